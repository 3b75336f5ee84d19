// The torch-free request path: multipart parsing, upload rules, the error mapping (base64:
// tests/core/base64_test.cpp).
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/image.h"
#include "fixtures.h"
#include "serve/http.h"
#include "serve/multipart.h"
#include "test_util.h"

namespace ddpipe::serve {
namespace {

using testing::usage_error;

TEST(Multipart, BoundaryFromContentType) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(multipart_boundary("multipart/form-data;boundary=\"a b;c\"; charset=utf-8"), "a b;c");
  EXPECT_EQ(multipart_boundary("multipart/form-data; charset=x; BOUNDARY=zz"), "zz");
  EXPECT_NE(
      usage_error([] { multipart_boundary("multipart/form-data"); }).find("without a boundary"),
      std::string::npos);
  EXPECT_NE(usage_error([] { multipart_boundary("multipart/form-data; boundary="); }).find("1-70"),
            std::string::npos);
  EXPECT_NE(usage_error([] {
              multipart_boundary("multipart/form-data; boundary=\"abc");
            }).find("unterminated"),
            std::string::npos);
}

TEST(Multipart, PartsNamesFilenamesAndBinaryData) {
  const std::string png("\x89PNG\r\n\x1a\n\0\r\n--xy", 16);  // CRLF and a near-boundary inside
  const std::string body =
      "preamble\r\n--xyz\r\n"
      "Content-Disposition: form-data; name=\"note\"\r\n\r\n"
      "hello\r\n--xyz\r\n"
      "content-disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".png\"\r\n"
      "Content-Type: image/png\r\n\r\n" +
      png + "\r\n--xyz--\r\nepilogue";
  auto parts = parse_multipart(body, "xyz");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "note");
  EXPECT_EQ(parts[0].data, "hello");
  EXPECT_EQ(parts[0].filename, "");
  EXPECT_EQ(parts[1].name, "file");
  EXPECT_EQ(parts[1].filename, "a \"b\".png");
  EXPECT_EQ(parts[1].content_type, "image/png");
  EXPECT_EQ(parts[1].data, png);
  EXPECT_TRUE(parse_multipart("--b--\r\n", "b").empty());
}

TEST(Multipart, MalformedBodiesAreUsageErrors) {
  const std::string head = "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n";
  EXPECT_NE(usage_error([&] { parse_multipart(head + "data", "b"); }).find("closing boundary"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { parse_multipart("no boundary here", "b"); }).find("does not contain"),
            std::string::npos);
  EXPECT_NE(usage_error([&] {
              parse_multipart("--b\r\nContent-Disposition: form-data", "b");
            }).find("headers do not end"),
            std::string::npos);
  EXPECT_NE(usage_error([&] {
              parse_multipart("--b\r\nX-Other: 1\r\n\r\nd\r\n--b--", "b");
            }).find("no Content-Disposition name"),
            std::string::npos);
  EXPECT_NE(usage_error([&] {
              parse_multipart("--b\r\nbroken header\r\n\r\nd\r\n--b--", "b");
            }).find("malformed part header"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { parse_multipart("--bX", "b"); }).find("not followed by CRLF"),
            std::string::npos);
  std::string many;
  for (int i = 0; i < 5; ++i)
    many += "--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nx\r\n";
  EXPECT_NE(usage_error([&] { parse_multipart(many + "--b--", "b", 4); }).find("more than 4 parts"),
            std::string::npos);
}

HttpRequest upload(const std::string& type, const std::string& body) {
  HttpRequest r;
  r.method = "POST";
  r.path = "/predict";
  if (!type.empty()) r.headers["content-type"] = type;
  r.body = body;
  return r;
}

TEST(Upload, MultipartFieldOrRawBody) {
  std::string name;
  auto mp = upload("multipart/form-data; boundary=" + fixtures::kBoundary,
                   fixtures::multipart("file", "shirt.png", "PNGBYTES"));
  EXPECT_EQ(uploaded_image(mp, name), "PNGBYTES");
  EXPECT_EQ(name, "shirt.png");
  for (const char* type :
       {"image/png", "image/jpeg", "application/octet-stream", "", "Image/PNG; charset=binary"}) {
    EXPECT_EQ(uploaded_image(upload(type, "RAW"), name), "RAW") << type;
    EXPECT_EQ(name, "request body");
  }
}

TEST(Upload, RefusalsHaveTheirStatus) {
  std::string name;
  auto status = [&](const HttpRequest& r) {
    try {
      uploaded_image(r, name);
    } catch (const std::exception& e) {
      return status_for(e);
    }
    return 200;
  };
  EXPECT_EQ(status(upload("text/plain", "hello")), 415);
  EXPECT_EQ(status(upload("image/png", "")), 400);
  EXPECT_EQ(status(upload("multipart/form-data; boundary=" + fixtures::kBoundary,
                          fixtures::multipart("image", "x.png", "PNG"))),
            400);
  EXPECT_EQ(status(upload("multipart/form-data; boundary=" + fixtures::kBoundary,
                          fixtures::multipart("file", "x.png", ""))),
            400);
  EXPECT_EQ(status(upload("multipart/form-data", "--x\r\n")), 400);
  EXPECT_EQ(status(upload("multipart/form-data; boundary=zz",
                          "--zz\r\nContent-Disposition: "
                          "form-data; name=\"file\"\r\n\r\nab")),
            400);
}

TEST(StatusFor, OneMappingForEveryFailure) {
  using core::ErrorKind;
  EXPECT_EQ(status_for(HttpError(405, "m")), 405);
  EXPECT_EQ(status_for(data::ImageError(data::ImageError::Reason::kTooLarge, "big")), 413);
  EXPECT_EQ(status_for(data::ImageError(data::ImageError::Reason::kNotAnImage, "gif")), 415);
  EXPECT_EQ(status_for(core::Error(ErrorKind::kData, "corrupt")), 400);
  EXPECT_EQ(status_for(core::Error(ErrorKind::kUsage, "bad")), 400);
  EXPECT_EQ(status_for(core::Error(ErrorKind::kNotFound, "nope")), 404);
  EXPECT_EQ(status_for(core::Error(ErrorKind::kRetryable, "busy")), 503);
  EXPECT_EQ(status_for(core::Error(ErrorKind::kStorage, "disk")), 503);
  EXPECT_EQ(status_for(core::Error(ErrorKind::kInternal, "bug")), 500);
  EXPECT_EQ(status_for(std::runtime_error("other")), 500);
}

TEST(JsonResponse, InvalidUtf8IsReplacedNotThrown) {
  HttpResponse r = error_response(400, std::string("bad name \xff\xfe.png"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_NE(r.body.find("bad name"), std::string::npos);
  EXPECT_NO_THROW(nlohmann::json::parse(r.body));
}

}  // namespace
}  // namespace ddpipe::serve
