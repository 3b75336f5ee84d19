#include "storage/s3_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "core/base64.h"
#include "core/config.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/strings.h"
#include "storage/s3_xml.h"

namespace ddpipe::storage {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;
constexpr double kBackoffBase_s = 0.25;
constexpr double kBackoffCap_s = 8.0;

std::string env_or(const std::string& value, std::initializer_list<const char*> names,
                   const std::string& fallback = "") {
  if (!value.empty()) return value;
  for (const char* n : names) {
    const char* v = std::getenv(n);
    if (v && *v) return v;
  }
  return fallback;
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// Content-MD5: base64 of the raw MD5 of the body.
std::string content_md5(std::string_view body) {
  core::Hasher h(core::Hasher::Algo::kMd5);
  h.update(body);
  std::string hex = h.hex_digest();
  std::string raw(16, '\0');
  for (int i = 0; i < 16; ++i)
    raw[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return core::base64_encode(raw);
}

bool retryable_curl_code(CURLcode rc) {
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_OUT_OF_MEMORY:
      return false;
    default:
      return true;
  }
}

bool retryable_status(long status, const std::string& code) {
  return status >= 500 || status == 429 || code == "SlowDown" || code == "RequestTimeout" ||
         code == "InternalError" || code == "ServiceUnavailable";
}

// What to check after a 401/403 with this S3 error code.
std::string auth_hint(const std::string& code) {
  if (code == "SignatureDoesNotMatch") {
    return "; the secret access key does not match (AWS_SECRET_ACCESS_KEY or s3.secret_access_key)";
  }
  if (code == "InvalidAccessKeyId") return "; the server does not know this access key id";
  if (code == "InvalidToken" || code == "ExpiredToken") return "; renew AWS_SESSION_TOKEN";
  if (code == "RequestTimeTooSkewed") return "; the local clock is off";
  return "; check the credentials and the permissions on the bucket";
}

double backoff_seconds(int attempt) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  double d = std::min(kBackoffCap_s, kBackoffBase_s * std::pow(2.0, attempt));
  return d / 2 + std::uniform_real_distribution<double>(0.0, d / 2)(rng);
}

S3Head head_from(const std::map<std::string, std::string>& headers) {
  auto get = [&](const std::string& name) {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  };
  S3Head h;
  std::string length = get("content-length");
  h.size = length.empty() ? 0 : std::stoull(length);
  h.etag = unquote(get("etag"));
  std::string sse = get("x-amz-server-side-encryption");
  h.etag_is_digest = sse.rfind("aws:kms", 0) != 0 &&
                     get("x-amz-server-side-encryption-customer-algorithm").empty();
  for (const auto& [name, value] : headers) {
    if (name.rfind("x-amz-meta-", 0) == 0) h.metadata[name.substr(11)] = value;
  }
  return h;
}

}  // namespace

S3Settings resolve_s3_settings(const core::S3Config& c) {
  S3Settings s;
  s.region = env_or(c.region, {"AWS_REGION", "AWS_DEFAULT_REGION"}, "us-east-1");
  s.endpoint = env_or(c.endpoint, {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"},
                      "https://s3." + s.region + ".amazonaws.com");
  s.path_style = c.path_style;
  s.credentials.access_key_id = env_or(c.access_key_id, {"AWS_ACCESS_KEY_ID"});
  s.credentials.secret_access_key = env_or(c.secret_access_key, {"AWS_SECRET_ACCESS_KEY"});
  s.credentials.session_token = env_or(c.session_token, {"AWS_SESSION_TOKEN"});
  s.part_size = static_cast<uint64_t>(c.part_size_mb) << 20;
  s.parallel_parts = static_cast<int>(c.parallel_parts);
  s.timeout_s = c.timeout_s;
  s.max_retries = static_cast<int>(c.max_retries);
  if (s.credentials.access_key_id.empty() || s.credentials.secret_access_key.empty()) {
    core::fail_usage(
        "S3 store: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
        "s3.access_key_id and s3.secret_access_key)");
  }
  return s;
}

// ---- HTTP over a pool of libcurl handles ------------------------------------------------------

struct S3Client::Pool {
  std::mutex mu;
  std::vector<CURL*> idle;
  ~Pool() {
    for (CURL* h : idle) curl_easy_cleanup(h);
  }
  CURL* acquire() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        CURL* h = idle.back();
        idle.pop_back();
        return h;
      }
    }
    CURL* h = curl_easy_init();
    if (!h) throw core::Error(core::ErrorKind::kInternal, "libcurl: curl_easy_init failed");
    return h;
  }
  void release(CURL* h) {
    std::lock_guard<std::mutex> lock(mu);
    idle.push_back(h);
  }
};

// One S3 request, described once and sent (signed afresh) on every attempt.
struct S3Client::Call {
  Call(std::string op_, std::string method_, std::string bucket_, std::string key_)
      : op(std::move(op_)),
        method(std::move(method_)),
        bucket(std::move(bucket_)),
        key(std::move(key_)) {}
  std::string op;  // "PutObject", for messages
  std::string method;
  std::string bucket;
  std::string key;
  sigv4::Params query;
  sigv4::Params headers;
  std::string_view body;
  bool unsigned_payload = false;  // data bodies: integrity from Content-MD5 instead
  const S3Sink* sink = nullptr;   // receives a 2xx body
  bool error_in_body = false;     // a 200 may still carry <Error> (Complete, Copy)
};

struct S3Client::Response {
  long status = 0;                             // 0: no response (transport_error says why)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // unless a sink took it
  std::string transport_error;                 // connection failure or timeout
  bool transport_retryable = false;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

namespace {

struct Transfer {
  CURL* curl = nullptr;
  std::string_view upload;
  size_t upload_pos = 0;
  const S3Sink* sink = nullptr;
  std::map<std::string, std::string>* headers = nullptr;
  std::string* body = nullptr;
  std::exception_ptr sink_error;
};

size_t on_header(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  std::string_view line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->headers->clear();  // a new response (after a 100 Continue, say)
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    std::string value(line.substr(colon + 1));
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    (*t->headers)[core::to_lower(line.substr(0, colon))] = value;
  }
  return size * n;
}

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  const size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->sink && status >= 200 && status < 300) {
    try {
      t->sink->write(p, len);
    } catch (...) {
      t->sink_error = std::current_exception();
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
  } else if (status < 300 || t->body->size() < kMaxErrorBody) {
    t->body->append(p, len);
  }
  return len;
}

size_t on_read(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = std::min(size * n, t->upload.size() - t->upload_pos);
  std::copy_n(t->upload.data() + t->upload_pos, len, p);
  t->upload_pos += len;
  return len;
}

int on_seek(void* ud, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(ud);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > t->upload.size()) {
    return CURL_SEEKFUNC_FAIL;
  }
  t->upload_pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

// The request's header lines for curl: the signed headers, then Authorization; "Expect:" and
// "Accept:" stop curl from adding its own.
curl_slist* header_list(const sigv4::Params& headers, const std::string& authorization) {
  curl_slist* list = nullptr;
  for (const auto& [name, value] : headers) {
    list = curl_slist_append(list, (name + ": " + value).c_str());
  }
  list = curl_slist_append(list, ("Authorization: " + authorization).c_str());
  list = curl_slist_append(list, "Expect:");
  return curl_slist_append(list, "Accept:");
}

// The transfer options of a handle: timeouts, buffers, the callbacks on `t`, and how `method`
// sends `body_size` bytes.
void set_transfer_options(CURL* h, double timeout_s, long stall_s, const std::string& method,
                          size_t body_size, Transfer& t) {
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "ddpipe");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a stall of timeout_s ends the request
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L << 10);
  curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 2L << 20);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "PUT" || method == "POST") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
    if (method == "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
  } else if (method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
}

// Why no response came, for Response::transport_error.
std::string transport_error(CURLcode rc, const char* error, long stall_s,
                            const std::string& endpoint) {
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return "no response within " + std::to_string(stall_s) + " s (s3.timeout_s) from " + endpoint;
  }
  if (rc == CURLE_COULDNT_CONNECT) {
    return "cannot connect to " + endpoint + " (is the S3 server running?)";
  }
  return std::string(*error ? error : curl_easy_strerror(rc)) + " (" + endpoint + ")";
}

}  // namespace

S3Client::S3Client(S3Settings settings) : settings_(std::move(settings)), pool_(new Pool) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  const std::string& e = settings_.endpoint;
  size_t sep = e.find("://");
  if (sep == std::string::npos || (e.substr(0, sep) != "http" && e.substr(0, sep) != "https")) {
    core::fail_usage("S3 endpoint '" + e + "': expected http://host[:port] or https://host[:port]");
  }
  scheme_ = e.substr(0, sep);
  host_ = e.substr(sep + 3);
  while (!host_.empty() && host_.back() == '/') host_.pop_back();
  if (host_.empty() || host_.find('/') != std::string::npos) {
    core::fail_usage("S3 endpoint '" + e + "': expected scheme://host[:port] without a path");
  }
  if (settings_.parallel_parts < 1) settings_.parallel_parts = 1;
}

S3Client::~S3Client() = default;

std::string S3Client::host_for(const std::string& bucket) const {
  return settings_.path_style || bucket.empty() ? host_ : bucket + "." + host_;
}

std::string S3Client::path_for(const std::string& bucket, const std::string& key) const {
  if (bucket.empty()) return "/";
  if (settings_.path_style) return "/" + bucket + (key.empty() ? "" : "/" + key);
  return "/" + key;
}

S3Client::Response S3Client::send(const Call& call, const std::string& payload_hash) {
  sigv4::Request req;
  req.method = call.method;
  req.path = path_for(call.bucket, call.key);
  req.query = call.query;
  req.headers = call.headers;
  req.headers.emplace_back("Host", host_for(call.bucket));
  req.headers.emplace_back("x-amz-content-sha256", payload_hash);
  sigv4::Scope scope{sigv4::amz_date(std::chrono::system_clock::now()), settings_.region, "s3"};
  auto signed_req = sigv4::sign_headers(req, settings_.credentials, scope, payload_hash);
  std::string query = sigv4::canonical_query(req.query);
  std::string url = scheme_ + "://" + host_for(call.bucket) + sigv4::uri_encode(req.path, true) +
                    (query.empty() ? "" : "?" + query);
  curl_slist* headers = header_list(req.headers, signed_req.authorization);

  Response resp;
  Transfer t;
  t.upload = call.body;
  t.sink = call.sink;
  t.headers = &resp.headers;
  t.body = &resp.body;
  if (call.sink && call.sink->restart) call.sink->restart();

  CURL* h = pool_->acquire();
  t.curl = h;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  set_transfer_options(h, settings_.timeout_s, stall_seconds(), call.method, call.body.size(), t);
  const CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  pool_->release(h);
  curl_slist_free_all(headers);
  if (t.sink_error) std::rethrow_exception(t.sink_error);
  if (rc != CURLE_OK) {
    resp.status = 0;
    resp.transport_retryable = retryable_curl_code(rc);
    resp.transport_error = transport_error(rc, error, stall_seconds(), settings_.endpoint);
  }
  return resp;
}

S3Client::Response S3Client::perform(const Call& call) {
  const std::string target = "s3://" + call.bucket + (call.key.empty() ? "" : "/" + call.key);
  const std::string payload_hash = call.unsigned_payload ? std::string(sigv4::kUnsignedPayload)
                                   : call.body.empty()   ? std::string(sigv4::kEmptySha256)
                                                         : core::sha256_hex(call.body);
  for (int attempt = 0;; ++attempt) {
    Response resp = send(call, payload_hash);
    std::string code, detail;
    bool retry = false;
    if (!resp.transport_error.empty()) {
      retry = resp.transport_retryable;
      detail = resp.transport_error;
    } else if (resp.status >= 300 ||
               (call.error_in_body && resp.body.find("<Error>") != std::string::npos)) {
      code = s3xml::text(resp.body, "Code");
      std::string message = s3xml::text(resp.body, "Message");
      // A 200 carrying <Error> means the server failed midway: retried like a 500.
      retry = resp.status < 300 || retryable_status(resp.status, code);
      detail = "HTTP " + std::to_string(resp.status) + (code.empty() ? "" : " " + code) +
               (message.empty() ? "" : " (" + message + ")") + " from " + settings_.endpoint;
      if (resp.status == 401 || resp.status == 403) {
        detail = "authentication failed for access key id '" + settings_.credentials.access_key_id +
                 "': " + detail + auth_hint(code);
      }
    } else {
      return resp;
    }

    if (retry && attempt < settings_.max_retries) {
      double delay = backoff_seconds(attempt);
      core::log::warn("storage", "S3 " + call.op + " failed, retrying",
                      {{"target", target},
                       {"error", detail},
                       {"attempt", attempt + 1},
                       {"max_retries", settings_.max_retries},
                       {"delay_s", delay}});
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      continue;
    }
    std::string message = "S3 " + call.op + " " + target + ": " + detail;
    if (attempt > 0) message += " (after " + std::to_string(attempt + 1) + " attempts)";
    core::ErrorKind kind = resp.status == 404 ? core::ErrorKind::kNotFound
                           : retry            ? core::ErrorKind::kRetryable
                                              : core::ErrorKind::kStorage;
    throw S3Error(kind, message, resp.status, code);
  }
}

long S3Client::stall_seconds() const {
  return std::max(1L, static_cast<long>(std::ceil(settings_.timeout_s)));
}

// ---- operations -------------------------------------------------------------------------------

void S3Client::create_bucket(const std::string& bucket) {
  std::string body;
  if (settings_.region != "us-east-1") {
    body =
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>" +
        settings_.region +
        "</LocationConstraint>"
        "</CreateBucketConfiguration>";
  }
  Call c("CreateBucket", "PUT", bucket, "");
  c.body = body;
  try {
    perform(c);
  } catch (const S3Error& e) {
    if (e.code() != "BucketAlreadyOwnedByYou") throw;
  }
}

void S3Client::put_object(const std::string& bucket, const std::string& key, std::string_view body,
                          const sigv4::Params& headers) {
  Call c("PutObject", "PUT", bucket, key);
  c.headers = headers;
  c.body = body;
  c.unsigned_payload = true;
  c.headers.emplace_back("Content-MD5", content_md5(body));
  perform(c);
}

std::optional<S3Head> S3Client::head_object(const std::string& bucket, const std::string& key) {
  Call c("HeadObject", "HEAD", bucket, key);
  Response r;
  try {
    r = perform(c);
  } catch (const S3Error& e) {
    if (e.status() == 404) return std::nullopt;
    throw;
  }
  return head_from(r.headers);
}

S3Head S3Client::get_object(const std::string& bucket, const std::string& key, const S3Sink& sink,
                            uint64_t offset, uint64_t length, const std::string& if_match) {
  Call c("GetObject", "GET", bucket, key);
  c.sink = &sink;
  if (offset > 0 || length > 0) {
    c.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-" +
                                        (length ? std::to_string(offset + length - 1) : ""));
  }
  if (!if_match.empty()) c.headers.emplace_back("If-Match", "\"" + if_match + "\"");
  Response r = perform(c);
  return head_from(r.headers);
}

std::string S3Client::get_range(const std::string& bucket, const std::string& key, uint64_t offset,
                                uint64_t length) {
  std::string out;
  S3Sink sink{[&] { out.clear(); }, [&](const char* p, size_t n) { out.append(p, n); }};
  get_object(bucket, key, sink, offset, length);
  return out;
}

void S3Client::delete_object(const std::string& bucket, const std::string& key) {
  Call c("DeleteObject", "DELETE", bucket, key);
  try {
    perform(c);
  } catch (const S3Error& e) {
    if (e.status() != 404) throw;
  }
}

S3ListPage S3Client::list_objects_page(const std::string& bucket, const std::string& prefix,
                                       const std::string& continuation_token, int max_keys) {
  Call c("ListObjectsV2", "GET", bucket, "");
  c.query = {{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}};
  if (!prefix.empty()) c.query.emplace_back("prefix", prefix);
  if (!continuation_token.empty()) c.query.emplace_back("continuation-token", continuation_token);
  Response r = perform(c);
  S3ListPage page;
  page.objects = s3xml::list_objects(
      r.body, "S3 ListObjectsV2 s3://" + bucket + "/" + prefix + " from " + settings_.endpoint);
  if (s3xml::text(r.body, "IsTruncated") == "true") {
    page.next_token = s3xml::text(r.body, "NextContinuationToken");
    if (page.next_token.empty()) {
      throw S3Error(core::ErrorKind::kStorage,
                    "S3 ListObjectsV2 s3://" + bucket + "/" + prefix +
                        ": truncated listing without NextContinuationToken from " +
                        settings_.endpoint,
                    r.status, "");
    }
  }
  return page;
}

std::vector<S3ObjectInfo> S3Client::list_objects(const std::string& bucket,
                                                 const std::string& prefix) {
  std::vector<S3ObjectInfo> out;
  std::string token;
  do {
    S3ListPage page = list_objects_page(bucket, prefix, token, settings_.list_page_size);
    out.insert(out.end(), std::make_move_iterator(page.objects.begin()),
               std::make_move_iterator(page.objects.end()));
    token = page.next_token;
  } while (!token.empty());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

void S3Client::copy_object(const std::string& src_bucket, const std::string& src_key,
                           const std::string& dst_bucket, const std::string& dst_key) {
  Call c("CopyObject", "PUT", dst_bucket, dst_key);
  c.headers.emplace_back("x-amz-copy-source",
                         "/" + src_bucket + "/" + sigv4::uri_encode(src_key, true));
  c.error_in_body = true;
  perform(c);
}

std::string S3Client::create_multipart_upload(const std::string& bucket, const std::string& key,
                                              const sigv4::Params& headers) {
  Call c("CreateMultipartUpload", "POST", bucket, key);
  c.query = {{"uploads", ""}};
  c.headers = headers;
  Response r = perform(c);
  std::string id = s3xml::text(r.body, "UploadId");
  if (id.empty()) {
    throw S3Error(core::ErrorKind::kStorage,
                  "S3 CreateMultipartUpload s3://" + bucket + "/" + key +
                      ": no UploadId in the response from " + settings_.endpoint,
                  r.status, "");
  }
  return id;
}

std::string S3Client::upload_part(const std::string& bucket, const std::string& key,
                                  const std::string& upload_id, int part_number,
                                  std::string_view body) {
  Call c("UploadPart", "PUT", bucket, key);
  c.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  c.body = body;
  c.unsigned_payload = true;
  c.headers.emplace_back("Content-MD5", content_md5(body));
  return unquote(perform(c).header("etag"));
}

std::string S3Client::upload_part_copy(const std::string& bucket, const std::string& key,
                                       const std::string& upload_id, int part_number,
                                       const std::string& src_bucket, const std::string& src_key,
                                       uint64_t first, uint64_t last) {
  Call c("UploadPartCopy", "PUT", bucket, key);
  c.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  c.headers.emplace_back("x-amz-copy-source",
                         "/" + src_bucket + "/" + sigv4::uri_encode(src_key, true));
  c.headers.emplace_back("x-amz-copy-source-range",
                         "bytes=" + std::to_string(first) + "-" + std::to_string(last));
  c.error_in_body = true;
  return unquote(s3xml::text(perform(c).body, "ETag"));
}

void S3Client::complete_multipart_upload(const std::string& bucket, const std::string& key,
                                         const std::string& upload_id,
                                         const std::vector<std::string>& part_etags) {
  std::string body = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < part_etags.size(); ++i) {
    body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" + part_etags[i] +
            "\"</ETag></Part>";
  }
  body += "</CompleteMultipartUpload>";
  Call c("CompleteMultipartUpload", "POST", bucket, key);
  c.query = {{"uploadId", upload_id}};
  c.body = body;
  c.error_in_body = true;
  perform(c);
}

void S3Client::abort_multipart_upload(const std::string& bucket, const std::string& key,
                                      const std::string& upload_id) {
  Call c("AbortMultipartUpload", "DELETE", bucket, key);
  c.query = {{"uploadId", upload_id}};
  try {
    perform(c);
  } catch (const S3Error& e) {
    if (e.status() != 404) throw;  // NoSuchUpload: already gone
  }
}

std::vector<std::pair<std::string, std::string>> S3Client::list_multipart_uploads(
    const std::string& bucket, const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string key_marker, id_marker;
  for (;;) {
    Call c("ListMultipartUploads", "GET", bucket, "");
    c.query = {{"uploads", ""}, {"prefix", prefix}};
    if (!key_marker.empty()) c.query.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) c.query.emplace_back("upload-id-marker", id_marker);
    Response r = perform(c);
    for (std::string_view u : s3xml::elements(r.body, "Upload")) {
      out.emplace_back(s3xml::text(u, "Key"), s3xml::text(u, "UploadId"));
    }
    key_marker = s3xml::text(r.body, "NextKeyMarker");
    id_marker = s3xml::text(r.body, "NextUploadIdMarker");
    if (s3xml::text(r.body, "IsTruncated") != "true" || key_marker.empty()) return out;
  }
}

std::string S3Client::presign_url(const std::string& method, const std::string& bucket,
                                  const std::string& key, int64_t expires_s) const {
  sigv4::Request req;
  req.method = method;
  req.path = path_for(bucket, key);
  req.headers = {{"Host", host_for(bucket)}};
  sigv4::Scope scope{sigv4::amz_date(std::chrono::system_clock::now()), settings_.region, "s3"};
  sigv4::presign(req, settings_.credentials, scope, expires_s);
  return scheme_ + "://" + host_for(bucket) + sigv4::uri_encode(req.path, true) + "?" +
         sigv4::canonical_query(req.query);
}

}  // namespace ddpipe::storage
