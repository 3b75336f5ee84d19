// ddpipe::storage — reading S3's XML responses (ListObjectsV2, ListMultipartUploads,
// CreateMultipartUpload, CompleteMultipartUpload, errors): the few fixed shapes S3Client needs,
// without an XML library. The bytes come from the endpoint and are not trusted: nothing here
// crashes or allocates more than a few times the body, whatever it holds. Thread-safe (no state).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "storage/s3_client.h"

namespace ddpipe::storage::s3xml {

// `s` with XML's five named entities and numeric character references (&#…; &#x…;, as UTF-8)
// decoded; any other '&' is kept as it is. Never throws.
std::string unescape(std::string_view s);

// The inner XML of every <tag>…</tag> in `xml`, in order; an unclosed last one is left out.
std::vector<std::string_view> elements(std::string_view xml, const std::string& tag);

// The decoded text of the first <tag>…</tag> in `xml`, or "" when there is none.
std::string text(std::string_view xml, const std::string& tag);

// The objects of a ListObjectsV2 page (<Contents>: Key, Size, ETag without its quotes; a missing
// Size is 0). Throws core::Error(kStorage) naming `where` and the key for a Size that is not a
// decimal byte count within 64 bits.
std::vector<S3ObjectInfo> list_objects(std::string_view body, const std::string& where);

}  // namespace ddpipe::storage::s3xml
