#include "storage/store.h"

#include <algorithm>
#include <cctype>

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "storage/local_store.h"
#include "storage/s3_store.h"

namespace ddpipe::storage {

std::optional<std::string> Store::try_get(const std::string& key) {
  if (!exists(key)) return std::nullopt;
  try {
    return get(key);
  } catch (const core::Error& e) {
    if (e.kind() == core::ErrorKind::kNotFound) return std::nullopt;
    throw;
  }
}

void Store::copy(const std::string& from, const std::string& to) { put(to, get(from)); }

std::string printable(const std::string& text) {
  constexpr size_t kMaxShown = 200;
  std::string out;
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMaxShown) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

void validate_key(const std::string& key) {
  auto bad = [&](const std::string& why) {
    core::fail_usage("invalid store key '" + printable(key) + "': " + why);
  };
  if (key.empty()) bad("empty");
  if (key.size() > kMaxKeyBytes) {
    bad("longer than " + std::to_string(kMaxKeyBytes) + " bytes (" + std::to_string(key.size()) +
        ")");
  }
  if (std::any_of(key.begin(), key.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      })) {
    bad("control characters are not allowed");
  }
  if (key.front() == '/') bad("must be relative");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    std::string seg = key.substr(start, end - start);
    if (seg.empty()) bad("empty path segment");
    if (seg == "." || seg == "..") bad("'.' and '..' are not allowed");
    if (seg.rfind(core::kTempPrefix, 0) == 0) bad("names starting with .tmp- are reserved");
    if (seg.size() > kMaxSegmentBytes) {
      bad("a segment is longer than " + std::to_string(kMaxSegmentBytes) + " bytes");
    }
    start = end + 1;
  }
}

void validate_prefix(const std::string& prefix) {
  if (prefix.empty()) return;
  const bool slash = prefix.back() == '/';
  const std::string key = slash ? prefix.substr(0, prefix.size() - 1) : prefix;
  try {
    validate_key(key);
  } catch (const core::Error& e) {
    core::fail_usage("invalid store prefix '" + printable(prefix) +
                     "': expected \"\", a key or a key and '/' (" + e.what() + ")");
  }
}

bool is_valid_name(const std::string& name) {
  return !name.empty() && name[0] != '.' && name.size() <= kMaxNameBytes &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
         });
}

void validate_name(const std::string& what, const std::string& name) {
  if (!is_valid_name(name)) {
    core::fail_usage(what + " '" + printable(name) + "' is invalid: expected 1 to " +
                     std::to_string(kMaxNameBytes) +
                     " letters, digits, '.', '_' and '-', not starting with '.'");
  }
}

bool is_minio_default_credentials(const std::string& access_key_id,
                                  const std::string& secret_access_key) {
  return access_key_id == "minioadmin" && secret_access_key == "minioadmin";
}

namespace {

constexpr std::string_view kS3Scheme = "s3://";
constexpr std::string_view kFileScheme = "file://";

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

void check_bucket_name(const std::string& bucket, const std::string& url) {
  bool ok =
      bucket.size() >= 3 && bucket.size() <= 63 &&
      std::all_of(bucket.begin(), bucket.end(),
                  [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
                  }) &&
      std::isalnum(static_cast<unsigned char>(bucket.front())) &&
      std::isalnum(static_cast<unsigned char>(bucket.back()));
  if (!ok) {
    core::fail_usage("store " + url + ": invalid bucket name '" + bucket +
                     "' (3-63 characters: lower-case letters, digits, '-' and '.')");
  }
}

}  // namespace

bool StoreUrl::is_absolute_path() const {
  return kind == Kind::kLocal && !path.empty() && path[0] == '/';
}

std::string StoreUrl::str() const {
  if (kind == Kind::kLocal) return path;
  return std::string(kS3Scheme) + bucket + (prefix.empty() ? "" : "/" + prefix);
}

StoreUrl parse_store_url(const std::string& url) {
  StoreUrl u;
  if (starts_with(url, kS3Scheme)) {
    u.kind = StoreUrl::Kind::kS3;
    const std::string rest = url.substr(kS3Scheme.size());
    const size_t slash = rest.find('/');
    u.bucket = rest.substr(0, slash);
    check_bucket_name(u.bucket, url);
    u.prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
    if (!u.prefix.empty()) validate_key(u.prefix);
    return u;
  }
  u.path = url;
  if (starts_with(url, kFileScheme)) {
    u.path = url.substr(kFileScheme.size());
  } else if (url.find("://") != std::string::npos) {
    core::fail_usage("store: unsupported URL '" + url +
                     "' (expected a folder path, file:///path or s3://bucket/prefix)");
  }
  if (u.path.empty()) core::fail_usage("store: empty path");
  return u;
}

std::optional<ObjectUrl> parse_object_url(const std::string& arg) {
  if (!starts_with(arg, kS3Scheme)) return std::nullopt;
  const size_t slash = arg.find('/', kS3Scheme.size());
  return ObjectUrl{arg.substr(0, slash), slash == std::string::npos ? "" : arg.substr(slash + 1)};
}

std::unique_ptr<Store> open_store(const std::string& url, const core::S3Config& s3) {
  const StoreUrl u = parse_store_url(url);
  if (u.is_s3()) {
    S3Settings settings = resolve_s3_settings(s3);
    if (is_minio_default_credentials(settings.credentials.access_key_id,
                                     settings.credentials.secret_access_key)) {
      core::log::warn("storage",
                      "INSECURE: the S3 credentials are MinIO's defaults (minioadmin/minioadmin), "
                      "which anyone can guess: set other ones on the server and in "
                      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (docs/security.md)",
                      {{"store", u.str()}, {"endpoint", settings.endpoint}});
    }
    return std::make_unique<S3Store>(u, std::move(settings));
  }
  return std::make_unique<LocalStore>(core::expand_user(u.path));
}

std::unique_ptr<Store> open_store(const std::string& url) {
  return open_store(url, core::S3Config{});
}

std::unique_ptr<Store> open_store(const core::Config& config) {
  return open_store(config.store, config.s3);
}

}  // namespace ddpipe::storage
