// ddpipe::serve — what the inference service's handlers see of HTTP, whatever the transport:
// plain request/response values, the one mapping from errors to status codes, and the upload
// rules of POST /predict. No third-party HTTP types here (the transport is http_server.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ddpipe::serve {

struct HttpRequest {
  std::string method;                          // "GET", "POST", …
  std::string path;                            // without the query string
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string remote;  // client address, for access logs

  // The header's value, or "" when absent. `lower_name` must be lower case.
  std::string header(const std::string& lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// A refusal that is about HTTP itself (405, 401, 415, …), with its status code. Every other
// failure is a core::Error and is mapped by its kind (status_for).
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

// The one mapping from a failure to an HTTP status: HttpError → its own; data::ImageError →
// 415 (not PNG/JPEG) or 413 (too many pixels); core::Error kUsage, kData → 400, kNotFound → 404,
// kRetryable, kStorage → 503, kInternal, kSystem → 500; anything else → 500.
int status_for(const std::exception& e) noexcept;

HttpResponse json_response(int status, const nlohmann::json& body);
// {"error": message} with `status`.
HttpResponse error_response(int status, const std::string& message);

// The image bytes of an upload (POST /predict): the multipart/form-data field "file", or the
// whole body when Content-Type is image/png, image/jpeg, application/octet-stream or absent.
// `name` receives the file name for messages ("request body" without one). The view points into
// req.body. Throws HttpError 415 for other content types, core::Error(kUsage) (400) for a
// malformed multipart body, a missing "file" field or an empty image.
std::string_view uploaded_image(const HttpRequest& req, std::string& name);

}  // namespace ddpipe::serve
