#include "storage/store.h"

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
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

void validate_key(const std::string& key) {
  auto bad = [&](const std::string& why) {
    core::fail_usage("invalid store key '" + key + "': " + why);
  };
  if (key.empty()) bad("empty");
  if (key.front() == '/') bad("must be relative");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    std::string seg = key.substr(start, end - start);
    if (seg.empty()) bad("empty path segment");
    if (seg == "." || seg == "..") bad("'.' and '..' are not allowed");
    if (seg.rfind(core::kTempPrefix, 0) == 0) bad("names starting with .tmp- are reserved");
    start = end + 1;
  }
}

std::unique_ptr<Store> open_store(const std::string& url, const core::S3Config& s3) {
  if (url.rfind("s3://", 0) == 0) return std::make_unique<S3Store>(url, resolve_s3_settings(s3));
  std::string path = url;
  if (url.rfind("file://", 0) == 0) {
    path = url.substr(7);
  } else if (url.find("://") != std::string::npos) {
    core::fail_usage("store: unsupported URL '" + url +
                     "' (expected a folder path, file:///path or s3://bucket/prefix)");
  }
  if (path.empty()) core::fail_usage("store: empty path");
  return std::make_unique<LocalStore>(core::expand_user(path));
}

std::unique_ptr<Store> open_store(const std::string& url) {
  return open_store(url, core::S3Config{});
}

}  // namespace ddpipe::storage
