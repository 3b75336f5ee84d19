// libFuzzer target: the bytes a client controls on POST /predict (and in V1/V2 JSON), through
// serve's request parsing (multipart, upload rules), core's base64 and data::decode_image / to_chw
// (libpng, libjpeg-turbo). Built with clang under ASan + UBSan; see CMakeLists.txt.
//
// Input: when it starts with "multipart/form-data", its first line is the Content-Type and
// the rest the body; otherwise it is a raw image/png body. Expected refusals are core::Error or
// HttpError; anything else escaping is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/base64.h"
#include "core/error.h"
#include "data/image.h"
#include "serve/http.h"

using namespace ddpipe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  serve::HttpRequest req;
  req.method = "POST";
  req.path = "/predict";
  if (in.rfind("multipart/form-data", 0) == 0) {
    const size_t eol = in.find('\n');
    req.headers["content-type"] = std::string(in.substr(0, eol));
    if (eol != std::string_view::npos) req.body = std::string(in.substr(eol + 1));
  } else {
    req.headers["content-type"] = "image/png";
    req.body = std::string(in);
  }
  try {
    std::string name;
    const std::string_view upload = serve::uploaded_image(req, name);
    const data::Image image = data::decode_image(upload, name, int64_t{1} << 20);
    data::to_chw(image, 1, 28, 28);
    data::to_chw(image, 3, 7, 45);
  } catch (const core::Error& e) {
    serve::status_for(e);
  } catch (const serve::HttpError& e) {
    serve::status_for(e);
  }
  try {
    core::base64_decode(in.substr(0, 4096));
  } catch (const core::Error&) {
  }
  return 0;
}
