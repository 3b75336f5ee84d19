// ddpipe::core — file helpers with atomic publication.
//
// Every write that others may read goes through write_file_atomic(): the bytes go to a
// temporary name in the same directory (".tmp-<name>-<pid>-<random>"), are fsync'ed, and are
// renamed over the target, so a reader sees the old content or the new, never a part.
// All functions throw core::Error(kStorage) naming the path and the OS error.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace ddpipe::core {

namespace fs = std::filesystem;

// Prefix of temporary names; listings must skip entries that start with it.
inline constexpr std::string_view kTempPrefix = ".tmp-";

std::string read_file(const fs::path& path);
void write_file_atomic(const fs::path& path, std::string_view bytes);
// Copies src to dst atomically (temporary name + rename).
void copy_file_atomic(const fs::path& src, const fs::path& dst);
// A fresh temporary path next to `target` (not created).
fs::path temp_path_for(const fs::path& target);
// Creates a unique directory under the system temp dir; the caller removes it.
fs::path make_temp_dir(const std::string& prefix);
// A make_temp_dir() directory, removed with its content when this object goes away (errors
// while removing are ignored). Not copyable.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) : path_(make_temp_dir(prefix)) {}
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};
// Expands a leading "~/" with $HOME.
fs::path expand_user(const std::string& path);
// fsyncs a directory so that a rename inside it is durable.
void sync_dir(const fs::path& dir);

}  // namespace ddpipe::core
