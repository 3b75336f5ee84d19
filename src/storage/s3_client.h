// ddpipe::storage — S3Client: the S3 REST calls ddpipe needs (buckets, objects, ranged reads,
// listing, server-side copy, multipart uploads, presigned URLs), over libcurl with SigV4.
//
// Every call retries connection errors, timeouts (no progress for timeout_s), 5xx and SlowDown
// up to max_retries times with exponential back-off and jitter; other 4xx fail at once. A final
// failure throws S3Error naming the operation, bucket, key, HTTP status and S3 error code, and
// never a secret. Works with AWS, MinIO and Ceph RGW; path-style addressing by default.
// Thread-safe: calls may run concurrently (each takes a pooled connection).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "storage/sigv4.h"

namespace ddpipe::core {
struct S3Config;
}

namespace ddpipe::storage {

struct S3Settings {
  std::string endpoint = "https://s3.us-east-1.amazonaws.com";  // scheme://host[:port]
  std::string region = "us-east-1";
  bool path_style = true;  // endpoint/bucket/key; false: bucket.endpoint-host/key
  sigv4::Credentials credentials;
  uint64_t part_size = 16u << 20;  // objects larger than this are uploaded (and read) in parts
  int parallel_parts = 8;          // parts or ranges in flight per transfer
  double timeout_s = 30.0;         // connect timeout and the longest stall without progress
  int max_retries = 5;
  int list_page_size = 1000;              // ListObjectsV2 max-keys
  uint64_t max_single_copy = 5ull << 30;  // larger copies use UploadPartCopy
};

// config.s3 over the environment: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION /
// AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (a config
// value wins over the variable). Throws core::Error(kUsage) when no credentials are found.
S3Settings resolve_s3_settings(const core::S3Config& config);

// A failed S3 call. kind(): kNotFound for 404, kRetryable when the service stayed unreachable
// or overloaded through every retry, kStorage otherwise (authentication, permissions, …).
class S3Error : public core::Error {
 public:
  S3Error(core::ErrorKind kind, const std::string& message, long status, std::string code)
      : core::Error(kind, message), status_(status), code_(std::move(code)) {}
  long status() const { return status_; }            // HTTP status; 0 = no response
  const std::string& code() const { return code_; }  // "NoSuchKey", "SlowDown", … or ""

 private:
  long status_;
  std::string code_;
};

struct S3ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // without quotes
};

struct S3Head {
  uint64_t size = 0;           // of the object (HEAD) or of the returned range (GET)
  std::string etag;            // without quotes
  bool etag_is_digest = true;  // false under SSE-KMS / SSE-C, where the ETag is not an MD5
  std::map<std::string, std::string> metadata;  // x-amz-meta-NAME → value, NAME lower-case
};

struct S3ListPage {
  std::vector<S3ObjectInfo> objects;
  std::string next_token;  // "" on the last page
};

// Receives a GET body. restart() runs before every attempt (the body starts over after a
// retry); write() gets the bytes in order. Either may throw to stop the call without retries.
struct S3Sink {
  std::function<void()> restart;
  std::function<void(const char* data, size_t n)> write;
};

class S3Client {
 public:
  explicit S3Client(S3Settings settings);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Settings& settings() const { return settings_; }

  // Creates the bucket; a bucket this account already owns is not an error.
  void create_bucket(const std::string& bucket);
  // One PUT request; `headers` are sent and signed as well (e.g. x-amz-meta-*). The body is
  // checked by the server against the Content-MD5 this call adds.
  void put_object(const std::string& bucket, const std::string& key, std::string_view body,
                  const sigv4::Params& headers = {});
  // nullopt when the object does not exist.
  std::optional<S3Head> head_object(const std::string& bucket, const std::string& key);
  // Streams bytes [offset, offset + length) (length 0: to the end) into `sink`. With a
  // non-empty if_match the object must still have that ETag (else S3Error, HTTP 412).
  S3Head get_object(const std::string& bucket, const std::string& key, const S3Sink& sink,
                    uint64_t offset = 0, uint64_t length = 0, const std::string& if_match = "");
  std::string get_range(const std::string& bucket, const std::string& key, uint64_t offset,
                        uint64_t length);
  // Absent keys are not an error.
  void delete_object(const std::string& bucket, const std::string& key);
  S3ListPage list_objects_page(const std::string& bucket, const std::string& prefix,
                               const std::string& continuation_token, int max_keys);
  // Every object under `prefix`, all pages, in key order.
  std::vector<S3ObjectInfo> list_objects(const std::string& bucket, const std::string& prefix);
  // Server-side copy in one request (objects up to 5 GiB); metadata is copied.
  void copy_object(const std::string& src_bucket, const std::string& src_key,
                   const std::string& dst_bucket, const std::string& dst_key);

  // Multipart upload: parts are numbered from 1; the object appears only on complete.
  std::string create_multipart_upload(const std::string& bucket, const std::string& key,
                                      const sigv4::Params& headers = {});
  // Returns the part's ETag. The body is checked against the Content-MD5 this call adds.
  std::string upload_part(const std::string& bucket, const std::string& key,
                          const std::string& upload_id, int part_number, std::string_view body);
  // Bytes [first, last] of the source object become the part; returns the part's ETag.
  std::string upload_part_copy(const std::string& bucket, const std::string& key,
                               const std::string& upload_id, int part_number,
                               const std::string& src_bucket, const std::string& src_key,
                               uint64_t first, uint64_t last);
  void complete_multipart_upload(const std::string& bucket, const std::string& key,
                                 const std::string& upload_id,
                                 const std::vector<std::string>& part_etags);
  void abort_multipart_upload(const std::string& bucket, const std::string& key,
                              const std::string& upload_id);
  // In-progress uploads under `prefix`: (key, upload id) pairs.
  std::vector<std::pair<std::string, std::string>> list_multipart_uploads(
      const std::string& bucket, const std::string& prefix);

  // A URL that allows `method` on the object for `expires_s` seconds without credentials.
  std::string presign_url(const std::string& method, const std::string& bucket,
                          const std::string& key, int64_t expires_s) const;

 private:
  struct Call;
  struct Response;
  struct Pool;
  // One attempt, signed now. Transport failures are described in the response.
  Response send(const Call& call, const std::string& payload_hash);
  // Sends with retries; returns a 2xx response or throws S3Error.
  Response perform(const Call& call);
  // CURLOPT_LOW_SPEED_TIME: timeout_s in whole seconds.
  long stall_seconds() const;
  // Host header and URL path of a bucket/key under the addressing style.
  std::string host_for(const std::string& bucket) const;
  std::string path_for(const std::string& bucket, const std::string& key) const;

  S3Settings settings_;
  std::string scheme_;  // "http" or "https"
  std::string host_;    // "127.0.0.1:7480"
  std::unique_ptr<Pool> pool_;
};

}  // namespace ddpipe::storage
