#include "storage/local_store.h"

#include <algorithm>

#include "core/error.h"
#include "core/fs.h"

namespace ddpipe::storage {

namespace fs = std::filesystem;

LocalStore::LocalStore(fs::path root) : root_(std::move(root)) {}

std::string LocalStore::url() const { return root_.string(); }

bool LocalStore::inside_root(const fs::path& path) const {
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(root_, ec);
  if (ec) core::fail_storage("store " + url() + ": resolving its folder: " + ec.message());
  const fs::path real = fs::weakly_canonical(path, ec);
  if (ec)
    core::fail_storage("store " + url() + ": resolving " + path.string() + ": " + ec.message());
  const fs::path rel = real.lexically_relative(root);
  return !rel.empty() && rel != "." && *rel.begin() != "..";
}

fs::path LocalStore::path_of(const std::string& key) const {
  validate_key(key);
  fs::path p = root_ / key;
  if (!inside_root(p)) {
    std::error_code ec;
    core::fail_data("store " + url() + ": key '" + key + "' resolves to " +
                    fs::weakly_canonical(p, ec).string() +
                    ", outside the store's folder (through a symbolic link in it): refused");
  }
  return p;
}

void LocalStore::put(const std::string& key, std::string_view bytes) {
  core::write_file_atomic(path_of(key), bytes);
}

void LocalStore::put_file(const std::string& key, const fs::path& source) {
  core::copy_file_atomic(source, path_of(key));
}

std::string LocalStore::get(const std::string& key) {
  fs::path p = path_of(key);
  if (!fs::is_regular_file(p)) {
    core::fail_not_found("store " + url() + ": no object '" + key + "'");
  }
  try {
    return core::read_file(p);
  } catch (const core::Error&) {
    // Removed between the check and the read (another process or thread): absent.
    if (!fs::exists(p)) core::fail_not_found("store " + url() + ": no object '" + key + "'");
    throw;
  }
}

void LocalStore::get_file(const std::string& key, const fs::path& dest) {
  fs::path p = path_of(key);
  if (!fs::is_regular_file(p)) {
    core::fail_not_found("store " + url() + ": no object '" + key + "'");
  }
  core::copy_file_atomic(p, dest);
}

bool LocalStore::exists(const std::string& key) { return fs::is_regular_file(path_of(key)); }

std::vector<ObjectInfo> LocalStore::list(const std::string& prefix) {
  std::vector<ObjectInfo> out;
  validate_prefix(prefix);
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return out;
  // Walk only the deepest directory that the prefix names completely (never one that a
  // symbolic link leads out of the store to; the walk itself follows no directory links).
  fs::path start = root_;
  size_t slash = prefix.rfind('/');
  if (slash != std::string::npos) start = root_ / prefix.substr(0, slash);
  if (!fs::is_directory(start, ec) || (start != root_ && !inside_root(start))) return out;
  for (auto it = fs::recursive_directory_iterator(start, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(core::kTempPrefix, 0) == 0) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    // An object removed while the walk runs (another process, thread) is simply not listed.
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec)) continue;
    if (it->is_symlink(entry_ec) && !inside_root(it->path())) continue;  // get() refuses it
    std::string key = it->path().lexically_relative(root_).generic_string();
    if (key.rfind(prefix, 0) != 0) continue;
    const uintmax_t size = it->file_size(entry_ec);
    if (entry_ec) continue;
    out.push_back({key, static_cast<uint64_t>(size)});
  }
  if (ec) core::fail_storage("listing " + start.string() + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.key < b.key; });
  return out;
}

void LocalStore::remove(const std::string& key) {
  std::error_code ec;
  fs::remove(path_of(key), ec);
  if (ec) core::fail_storage("removing " + key + " from " + url() + ": " + ec.message());
}

}  // namespace ddpipe::storage
