#include "storage/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

#include "core/error.h"
#include "core/hash.h"
#include "core/strings.h"

namespace ddpipe::storage::sigv4 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len)) {
    throw core::Error(core::ErrorKind::kInternal, "OpenSSL HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string hex(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string s(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kHex[static_cast<unsigned char>(bytes[i]) >> 4];
    s[2 * i + 1] = kHex[static_cast<unsigned char>(bytes[i]) & 15];
  }
  return s;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Trims and collapses runs of whitespace (folded header lines included) to one space.
std::string canonical_value(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (is_space(c)) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out += ' ';
      pending_space = false;
      out += c;
    }
  }
  return out;
}

// Lower-cased names in order, each with its values joined by ','.
std::vector<std::pair<std::string, std::string>> canonical_headers(const Params& headers) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : headers) {
    std::string n = core::to_lower(name);
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& h) { return h.first == n; });
    if (it == out.end()) {
      out.emplace_back(n, canonical_value(value));
    } else {
      it->second += "," + canonical_value(value);
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::string signed_header_list(const Params& headers) {
  std::string out;
  for (const auto& h : canonical_headers(headers)) out += (out.empty() ? "" : ";") + h.first;
  return out;
}

void set_header(Params& headers, const std::string& name, const std::string& value) {
  headers.erase(std::remove_if(headers.begin(), headers.end(),
                               [&](const auto& h) { return core::iequals(h.first, name); }),
                headers.end());
  headers.emplace_back(name, value);
}

void check_scope(const Scope& scope) {
  if (scope.amz_date.size() != 16 || scope.amz_date[8] != 'T' || scope.amz_date[15] != 'Z') {
    core::fail_usage("sigv4: x-amz-date must look like 20150830T123600Z, got '" + scope.amz_date +
                     "'");
  }
}

}  // namespace

std::string Scope::credential_scope() const {
  return amz_date.substr(0, 8) + "/" + region + "/" + service + "/aws4_request";
}

std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string canonical_query(const Params& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

std::string canonical_request(const Request& request, std::string_view payload_hash) {
  std::string out = request.method + "\n" + uri_encode(request.path, true) + "\n" +
                    canonical_query(request.query) + "\n";
  for (const auto& [name, value] : canonical_headers(request.headers)) {
    out += name + ":" + value + "\n";
  }
  out += "\n" + signed_header_list(request.headers) + "\n";
  out += payload_hash;
  return out;
}

std::string string_to_sign(const Scope& scope, std::string_view canonical_request) {
  return std::string(kAlgorithm) + "\n" + scope.amz_date + "\n" + scope.credential_scope() + "\n" +
         core::sha256_hex(canonical_request);
}

std::string signature(const std::string& secret_access_key, const Scope& scope,
                      std::string_view string_to_sign) {
  std::string key = hmac("AWS4" + secret_access_key, scope.amz_date.substr(0, 8));
  key = hmac(key, scope.region);
  key = hmac(key, scope.service);
  key = hmac(key, "aws4_request");
  return hex(hmac(key, string_to_sign));
}

Signed sign_headers(Request& request, const Credentials& credentials, const Scope& scope,
                    std::string_view payload_hash) {
  check_scope(scope);
  set_header(request.headers, "X-Amz-Date", scope.amz_date);
  if (!credentials.session_token.empty()) {
    set_header(request.headers, "X-Amz-Security-Token", credentials.session_token);
  }
  Signed s;
  s.canonical_request = canonical_request(request, payload_hash);
  s.string_to_sign = string_to_sign(scope, s.canonical_request);
  s.signature = signature(credentials.secret_access_key, scope, s.string_to_sign);
  s.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                    scope.credential_scope() +
                    ", SignedHeaders=" + signed_header_list(request.headers) +
                    ", Signature=" + s.signature;
  return s;
}

Signed presign(Request& request, const Credentials& credentials, const Scope& scope,
               int64_t expires_s, std::string_view payload_hash) {
  check_scope(scope);
  if (expires_s < 1 || expires_s > 604800) {
    core::fail_usage("sigv4: a presigned URL expires after 1 to 604800 s, got " +
                     std::to_string(expires_s));
  }
  Params& q = request.query;
  q.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  q.emplace_back("X-Amz-Credential", credentials.access_key_id + "/" + scope.credential_scope());
  q.emplace_back("X-Amz-Date", scope.amz_date);
  q.emplace_back("X-Amz-Expires", std::to_string(expires_s));
  q.emplace_back("X-Amz-SignedHeaders", signed_header_list(request.headers));
  if (!credentials.session_token.empty()) {
    q.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  Signed s;
  s.canonical_request = canonical_request(request, payload_hash);
  s.string_to_sign = string_to_sign(scope, s.canonical_request);
  s.signature = signature(credentials.secret_access_key, scope, s.string_to_sign);
  q.emplace_back("X-Amz-Signature", s.signature);
  return s;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char buf[20];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &utc);
  return buf;
}

}  // namespace ddpipe::storage::sigv4
