#include "core/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"

namespace ddpipe::core {
namespace {

std::string os_error() { return std::strerror(errno); }

std::string random_suffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          (static_cast<uint64_t>(getpid()) << 32));
  std::ostringstream o;
  o << std::hex << rng();
  return o.str();
}

void write_all(int fd, const char* data, size_t n, const fs::path& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_storage("writing " + path.string() + ": " + os_error());
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_storage("cannot open " + path.string() + " for reading: " + os_error());
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) fail_storage("reading " + path.string() + " failed");
  return buf.str();
}

fs::path temp_path_for(const fs::path& target) {
  return target.parent_path() / (std::string(kTempPrefix) + target.filename().string() + "-" +
                                 std::to_string(getpid()) + "-" + random_suffix());
}

void sync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  if (!path.parent_path().empty()) fs::create_directories(path.parent_path(), ec);
  if (ec)
    fail_storage("cannot create directory " + path.parent_path().string() + ": " + ec.message());
  fs::path tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail_storage("cannot create " + tmp.string() + ": " + os_error());
  try {
    write_all(fd, bytes.data(), bytes.size(), tmp);
    if (::fsync(fd) != 0) fail_storage("fsync " + tmp.string() + ": " + os_error());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = os_error();
    ::unlink(tmp.c_str());
    fail_storage("cannot publish " + path.string() + ": " + err);
  }
  sync_dir(path.parent_path());
}

void copy_file_atomic(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  if (!dst.parent_path().empty()) fs::create_directories(dst.parent_path(), ec);
  fs::path tmp = temp_path_for(dst);
  if (!fs::copy_file(src, tmp, fs::copy_options::overwrite_existing, ec)) {
    fail_storage("cannot copy " + src.string() + " to " + tmp.string() + ": " + ec.message());
  }
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    std::string err = os_error();
    ::unlink(tmp.c_str());
    fail_storage("cannot publish " + dst.string() + ": " + err);
  }
  sync_dir(dst.parent_path());
}

fs::path make_temp_dir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) fail_storage("mkdtemp " + tmpl + ": " + os_error());
  return tmpl;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

fs::path expand_user(const std::string& path) {
  if (path.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/tmp") / path.substr(2);
  }
  return path;
}

}  // namespace ddpipe::core
