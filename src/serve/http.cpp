#include "serve/http.h"

#include <algorithm>

#include "core/error.h"
#include "core/strings.h"
#include "data/image.h"
#include "serve/multipart.h"

namespace ddpipe::serve {

std::string HttpRequest::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

int status_for(const std::exception& e) noexcept {
  if (const auto* h = dynamic_cast<const HttpError*>(&e)) return h->status();
  if (const auto* i = dynamic_cast<const data::ImageError*>(&e)) {
    return i->reason() == data::ImageError::Reason::kTooLarge ? 413 : 415;
  }
  if (const auto* c = dynamic_cast<const core::Error*>(&e)) return core::http_status(c->kind());
  return 500;
}

HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  // Names and messages may carry client bytes that are not UTF-8: replace, never throw.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse error_response(int status, const std::string& message) {
  return json_response(status, {{"error", message}});
}

std::string_view uploaded_image(const HttpRequest& req, std::string& name) {
  const std::string type = req.header("content-type");
  std::string media = core::to_lower(type.substr(0, type.find(';')));
  media.erase(
      std::remove_if(media.begin(), media.end(), [](char c) { return c == ' ' || c == '\t'; }),
      media.end());
  if (media == "multipart/form-data") {
    for (const FormPart& part : parse_multipart(req.body, multipart_boundary(type))) {
      if (part.name != "file") continue;
      name = part.filename.empty() ? "file" : part.filename;
      if (part.data.empty()) core::fail_usage(name + ": the uploaded file is empty");
      return part.data;
    }
    core::fail_usage("multipart field 'file' is missing (send the image as -F file=@image.png)");
  }
  if (media.empty() || media == "image/png" || media == "image/jpeg" || media == "image/jpg" ||
      media == "application/octet-stream") {
    name = "request body";
    if (req.body.empty()) {
      core::fail_usage(
          "the request body is empty: send an image as the multipart field 'file' "
          "or as a raw image/png or image/jpeg body");
    }
    return req.body;
  }
  throw HttpError(415, "Content-Type " + media +
                           " is not supported: send multipart/form-data with a 'file' field, or a "
                           "raw image/png or image/jpeg body");
}

}  // namespace ddpipe::serve
