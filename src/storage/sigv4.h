// ddpipe::storage::sigv4 — AWS Signature Version 4 (header signing and presigned URLs).
//
// Pure functions over OpenSSL HMAC-SHA256: no clock, no network; the caller passes the time
// in the Scope. S3 rules throughout: the path is URI-encoded segment by segment and never
// normalised ("//" and "." segments are signed as they are). Thread-safe (no shared state).
// Tested against Amazon's SigV4 test suite and the S3 API Reference examples
// (tests/storage/sigv4_test.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ddpipe::storage::sigv4 {

// Payload hash for bodies that are not hashed (integrity then comes from Content-MD5).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// SHA-256 of the empty body.
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
};

using Params = std::vector<std::pair<std::string, std::string>>;

// A request to sign. Names and values are plain (not percent-encoded); every header listed is
// signed, so list exactly the headers that will be sent, Host included.
struct Request {
  std::string method = "GET";
  std::string path = "/";  // e.g. "/bucket/models/m/model.pt"
  Params query;            // any order; a value-less parameter ("?uploads") has value ""
  Params headers;          // names as sent; repeated names are joined with ','
};

struct Scope {
  std::string amz_date;  // "20150830T123600Z" (UTC)
  std::string region = "us-east-1";
  std::string service = "s3";
  // "20150830/us-east-1/s3/aws4_request"
  std::string credential_scope() const;
};

// Intermediate results, for tests and for debugging a SignatureDoesNotMatch.
struct Signed {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lower-case hex
  std::string authorization;  // header signing only
};

// RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ becomes %XX
// (upper-case hex); '/' is kept when keep_slash (paths) and encoded otherwise (query).
std::string uri_encode(std::string_view s, bool keep_slash);
// The canonical (and sendable) query string: encoded names and values, sorted, '&'-joined.
std::string canonical_query(const Params& query);
std::string canonical_request(const Request& request, std::string_view payload_hash);
std::string string_to_sign(const Scope& scope, std::string_view canonical_request);
// Hex HMAC of `string_to_sign` with the key derived from the secret and the scope.
std::string signature(const std::string& secret_access_key, const Scope& scope,
                      std::string_view string_to_sign);

// Header signing. Sets X-Amz-Date (and X-Amz-Security-Token when the credentials carry a
// token) in request.headers, then signs every header. The caller adds x-amz-content-sha256
// itself where the service wants it (S3 always does). Returns the steps; `authorization` is the
// value of the Authorization header ("AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…").
Signed sign_headers(Request& request, const Credentials& credentials, const Scope& scope,
                    std::string_view payload_hash);

// Query signing (a presigned URL valid for `expires_s` seconds, at most 604800). Adds the
// X-Amz-* parameters, X-Amz-Signature last, to request.query; headers are signed (Host at least).
Signed presign(Request& request, const Credentials& credentials, const Scope& scope,
               int64_t expires_s, std::string_view payload_hash = kUnsignedPayload);

// "20150830T123600Z" for a point in time.
std::string amz_date(std::chrono::system_clock::time_point t);

}  // namespace ddpipe::storage::sigv4
