// The SigV4 signer against Amazon's published test suite and the S3 API Reference examples in
// ../shared/testdata/sigv4 (skipped when absent), plus properties that need no vectors.
#include "storage/sigv4.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "test_util.h"

namespace ddpipe::storage::sigv4 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path vectors_dir() {
  fs::path shared = testing::shared_dir();
  return shared.empty() ? fs::path() : shared / "testdata" / "sigv4";
}

#define REQUIRE_VECTORS()                                                                      \
  if (vectors_dir().empty() || !fs::is_directory(vectors_dir()))                               \
  GTEST_SKIP() << "SigV4 vectors not found: ../shared/testdata/sigv4 (or $DDPIPE_SHARED_DIR) " \
                  "is absent in this checkout"

// The generic suite's fixed inputs (README of the vectors).
const Credentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const Scope kSuiteScope{"20150830T123600Z", "us-east-1", "service"};

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

Params parse_query(std::string_view q) {
  Params out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view item = q.substr(0, amp);
    size_t eq = item.find('=');
    out.emplace_back(percent_decode(item.substr(0, eq)),
                     eq == std::string_view::npos ? "" : percent_decode(item.substr(eq + 1)));
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
  }
  return out;
}

struct RawRequest {
  Request request;
  std::string body;
};

// Parses a raw HTTP request of the suite: "METHOD target HTTP/1.1", headers (folded lines are
// continued with their line break kept), an empty line, the body. The target may hold spaces.
RawRequest parse_request(const std::string& text) {
  RawRequest r;
  size_t eol = text.find('\n');
  std::string line = text.substr(0, eol);
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  r.request.method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t qm = target.find('?');
  r.request.path = percent_decode(target.substr(0, qm));
  if (qm != std::string::npos) r.request.query = parse_query(target.substr(qm + 1));
  size_t pos = eol == std::string::npos ? text.size() : eol + 1;
  while (pos < text.size()) {
    eol = text.find('\n', pos);
    std::string l = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    pos = eol == std::string::npos ? text.size() : eol + 1;
    if (l.empty()) {
      r.body = text.substr(pos);
      break;
    }
    if ((l[0] == ' ' || l[0] == '\t') && !r.request.headers.empty()) {
      r.request.headers.back().second += "\n" + l;
    } else {
      size_t colon = l.find(':');
      r.request.headers.emplace_back(l.substr(0, colon), l.substr(colon + 1));
    }
  }
  return r;
}

std::string authz_signature(const std::string& authz) {
  return authz.substr(authz.find("Signature=") + 10);
}

// A path S3 would sign differently because the suite normalised it ("//", "." or "..").
bool needs_normalisation(const std::string& path) {
  if (path.find("//") != std::string::npos) return true;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = std::min(path.find('/', start), path.size());
    std::string seg = path.substr(start, end - start);
    if (seg == "." || seg == "..") return true;
    start = end + 1;
  }
  return false;
}

// ---- classic layout: <case>/<case>.{req,creq,sts,authz} ----------------------------------------

TEST(SigV4Vectors, ClassicSuite) {
  REQUIRE_VECTORS();
  const fs::path root = vectors_dir();
  int checked = 0, signature_only = 0, skipped = 0;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->path().filename() == "aws-signing-test-suite") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->path().extension() != ".req") continue;
    const fs::path dir = it->path().parent_path();
    const std::string stem = it->path().stem().string();
    const std::string rel = fs::relative(dir, root).generic_string();
    SCOPED_TRACE(rel);
    auto file = [&](const char* ext) { return core::read_file(dir / (stem + ext)); };
    RawRequest raw = parse_request(file(".req"));

    // Not applicable to an S3 signer (README of the vectors):
    // - the original multiline case expects commas; aws-c-auth-additions holds the fix;
    // - normalize-path/* cases that need path normalisation, which S3 forbids.
    if (rel == "get-header-value-multiline" ||
        (rel.rfind("normalize-path/", 0) == 0 && needs_normalisation(raw.request.path))) {
      ++skipped;
      continue;
    }
    // Self-contradictory upstream: .creq is not what .sts hashes; check .sts → .authz only.
    if (stem == "post-x-www-form-urlencoded" || stem == "post-x-www-form-urlencoded-parameters") {
      EXPECT_EQ(signature(kSuiteCredentials.secret_access_key, kSuiteScope, file(".sts")),
                authz_signature(file(".authz")));
      ++signature_only;
      continue;
    }
    Credentials creds = kSuiteCredentials;
    if (stem == "get-vanilla-with-session-token") {
      // The token is an input of this case; its v4-layout twin's context.json holds it.
      fs::path ctx = root / "aws-signing-test-suite/v4/get-vanilla-with-session-token/context.json";
      if (!fs::exists(ctx)) {
        ++skipped;
        continue;
      }
      creds.session_token = json::parse(core::read_file(ctx))["credentials"]["token"];
    }
    Signed s = sign_headers(raw.request, creds, kSuiteScope, core::sha256_hex(raw.body));
    EXPECT_EQ(s.canonical_request, file(".creq"));
    EXPECT_EQ(s.string_to_sign, file(".sts"));
    EXPECT_EQ(s.authorization, file(".authz"));
    ++checked;
  }
  // 34 classic cases: 1 superseded, 6 that need normalisation, 2 signature-only.
  EXPECT_EQ(checked, 25);
  EXPECT_EQ(signature_only, 2);
  EXPECT_EQ(skipped, 7);
}

// ---- aws-signing-test-suite/v4: header and query (presigned) signing ----------------------------

TEST(SigV4Vectors, SigningSuiteV4HeaderAndQuery) {
  REQUIRE_VECTORS();
  const fs::path root = vectors_dir() / "aws-signing-test-suite" / "v4";
  ASSERT_TRUE(fs::is_directory(root)) << root;
  int header_cases = 0, query_cases = 0, skipped = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    const fs::path dir = entry.path();
    SCOPED_TRACE(dir.filename().string());
    auto file = [&](const char* name) { return core::read_file(dir / name); };
    json ctx = json::parse(file("context.json"));
    RawRequest raw = parse_request(file("request.txt"));
    // omit_session_token adds the token after signing (an IoT variant, not S3's rule);
    // normalised cases that change the path do not apply to S3 (see ClassicSuite).
    if (ctx.value("omit_session_token", false) ||
        (ctx.value("normalize", true) && needs_normalisation(raw.request.path))) {
      ++skipped;
      continue;
    }
    Credentials creds{ctx["credentials"]["access_key_id"], ctx["credentials"]["secret_access_key"],
                      ctx["credentials"].value("token", "")};
    std::string stamp = ctx["timestamp"];  // 2015-08-30T12:36:00Z
    stamp.erase(
        std::remove_if(stamp.begin(), stamp.end(), [](char c) { return c == '-' || c == ':'; }),
        stamp.end());
    Scope scope{stamp, ctx["region"], ctx["service"]};
    const std::string payload = core::sha256_hex(raw.body);

    Request header_req = raw.request;
    if (ctx.value("sign_body", false))
      header_req.headers.emplace_back("x-amz-content-sha256", payload);
    Signed h = sign_headers(header_req, creds, scope, payload);
    EXPECT_EQ(h.canonical_request, file("header-canonical-request.txt"));
    EXPECT_EQ(h.string_to_sign, file("header-string-to-sign.txt"));
    EXPECT_EQ(h.signature, file("header-signature.txt"));
    std::string signed_req = file("header-signed-request.txt");
    size_t at = signed_req.find("Authorization:");
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(signed_req.substr(at + 14, signed_req.find('\n', at) - at - 14), h.authorization);
    ++header_cases;

    Request query_req = raw.request;
    Signed q = presign(query_req, creds, scope, ctx["expiration_in_seconds"], payload);
    EXPECT_EQ(q.canonical_request, file("query-canonical-request.txt"));
    EXPECT_EQ(q.string_to_sign, file("query-string-to-sign.txt"));
    EXPECT_EQ(q.signature, file("query-signature.txt"));
    // The signed URL carries the same parameters (their order there is not canonical).
    std::string line = file("query-signed-request.txt");
    line = line.substr(0, line.find('\n'));
    std::string target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
    EXPECT_EQ(canonical_query(parse_query(target.substr(target.find('?') + 1))),
              canonical_query(query_req.query));
    ++query_cases;
  }
  // 38 cases: 6 need normalisation, 1 omits the session token from the signature.
  EXPECT_EQ(header_cases, 31);
  EXPECT_EQ(query_cases, 31);
  EXPECT_EQ(skipped, 7);
}

// ---- S3 API Reference examples ------------------------------------------------------------------

TEST(SigV4Vectors, S3ApiReferenceExamples) {
  REQUIRE_VECTORS();
  json doc = json::parse(core::read_file(vectors_dir() / "s3-examples.json"));
  const json& in = doc["fixed_inputs"];
  Credentials creds{in["access_key_id"], in["secret_access_key"], ""};
  Scope scope{in["x_amz_date"], in["region"], in["service"]};
  int checked = 0;
  for (const json& ex : doc["examples"]) {
    SCOPED_TRACE(ex["name"].get<std::string>());
    const json& r = ex["request"];
    const json& want = ex["expected"];
    Request req;
    req.method = r["method"];
    req.path = r["path"];
    if (r.contains("query")) req.query = parse_query(r["query"].get<std::string>());
    for (const json& h : r["headers"]) req.headers.emplace_back(h[0], h[1]);
    if (want.contains("presigned_url")) {
      Signed s = presign(req, creds, scope, r["expires_seconds"]);
      EXPECT_EQ(s.canonical_request, want["canonical_request"]);
      EXPECT_EQ(s.string_to_sign, want["string_to_sign"]);
      EXPECT_EQ(s.signature, want["signature"]);
      std::string url = want["presigned_url"];
      EXPECT_EQ(url.substr(0, url.find('?')), "https://" + r["host"].get<std::string>() + req.path);
      EXPECT_EQ(canonical_query(parse_query(url.substr(url.find('?') + 1))),
                canonical_query(req.query));
    } else {
      // The payload hash is what the request declares in x-amz-content-sha256. For the
      // aws-chunked example this checks the seed signature; chunk signatures do not apply
      // (ddpipe sends no aws-chunked bodies).
      std::string payload;
      for (const auto& [name, value] : req.headers) {
        if (name == "x-amz-content-sha256") payload = value;
      }
      Signed s = sign_headers(req, creds, scope, payload);
      EXPECT_EQ(s.canonical_request, want["canonical_request"]);
      EXPECT_EQ(s.string_to_sign, want["string_to_sign"]);
      EXPECT_EQ(s.signature, want["signature"]);
      // The S3 docs separate the components with "," where the suite (and ddpipe) use ", ".
      std::string authz = s.authorization;
      for (size_t p; (p = authz.find(", ")) != std::string::npos;) authz.erase(p + 1, 1);
      EXPECT_EQ(authz, want["authorization"]);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

// ---- properties -------------------------------------------------------------------------------

TEST(SigV4, UriEncodeKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(uri_encode("a-b_c.d~e/f g+h=ü", true), "a-b_c.d~e/f%20g%2Bh%3D%C3%BC");
  EXPECT_EQ(uri_encode("a/b", false), "a%2Fb");
  EXPECT_EQ(uri_encode("test$file.text", true), "test%24file.text");
}

TEST(SigV4, CanonicalQuerySortsByEncodedName) {
  EXPECT_EQ(canonical_query({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(
      canonical_query({{"prefix", "a b/c"}, {"list-type", "2"}, {"continuation-token", "x+y"}}),
      "continuation-token=x%2By&list-type=2&prefix=a%20b%2Fc");
}

TEST(SigV4, PathIsNeverNormalised) {
  Request r;
  r.path = "/bucket//a/./b/../c";
  r.headers = {{"Host", "h"}};
  EXPECT_EQ(canonical_request(r, kUnsignedPayload).substr(0, 25), "GET\n/bucket//a/./b/../c\n\n");
}

TEST(SigV4, SessionTokenIsSignedAndAdded) {
  Request r;
  r.headers = {{"Host", "h"}};
  Credentials c{"AKID", "secret", "token/+="};
  Signed s = sign_headers(r, c, {"20240101T000000Z", "eu-west-1", "s3"}, kEmptySha256);
  EXPECT_NE(s.authorization.find("SignedHeaders=host;x-amz-date;x-amz-security-token"),
            std::string::npos);
  EXPECT_NE(s.authorization.find("Credential=AKID/20240101/eu-west-1/s3/aws4_request"),
            std::string::npos);
  EXPECT_EQ(s.authorization.find("secret"), std::string::npos);
  bool has_token = false;
  for (auto& [n, v] : r.headers) has_token |= n == "X-Amz-Security-Token" && v == "token/+=";
  EXPECT_TRUE(has_token);
}

TEST(SigV4, AmzDateAndBadInputs) {
  EXPECT_EQ(amz_date(std::chrono::system_clock::from_time_t(1440938160)), "20150830T123600Z");
  Request r;
  r.headers = {{"Host", "h"}};
  EXPECT_THROW(sign_headers(r, kSuiteCredentials, {"2015-08-30", "us-east-1", "s3"}, kEmptySha256),
               core::Error);
  EXPECT_THROW(presign(r, kSuiteCredentials, kSuiteScope, 604801), core::Error);
}

}  // namespace
}  // namespace ddpipe::storage::sigv4
