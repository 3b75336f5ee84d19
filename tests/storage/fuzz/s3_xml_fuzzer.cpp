// libFuzzer target: the XML bodies an S3 endpoint answers with (ListObjectsV2, errors,
// CreateMultipartUpload, CompleteMultipartUpload, ListMultipartUploads), read the way
// storage::S3Client reads them (storage::s3xml). The endpoint is outside ddpipe's control.
// Built with clang under ASan + UBSan; see cmake/DdpipeFuzz.cmake.
//
// Expected refusals are core::Error; anything else escaping is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "storage/s3_xml.h"

using namespace ddpipe::storage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    s3xml::list_objects(body, "fuzz ListObjectsV2");
  } catch (const ddpipe::core::Error&) {
  }
  for (const char* tag : {"Code", "Message", "IsTruncated", "NextContinuationToken", "UploadId",
                          "ETag", "NextKeyMarker", "NextUploadIdMarker"}) {
    s3xml::text(body, tag);
  }
  for (std::string_view upload : s3xml::elements(body, "Upload")) {
    s3xml::text(upload, "Key");
    s3xml::text(upload, "UploadId");
  }
  return 0;
}
