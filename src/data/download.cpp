#include "data/download.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/strings.h"

namespace ddpipe::data {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCifarBatches = "cifar-10-batches-bin";
constexpr const char* kCifarArchive = "cifar-10-binary.tar.gz";

// ---- libcurl --------------------------------------------------------------------------------

struct Transfer {
  CURL* curl = nullptr;
  FILE* file = nullptr;
  int64_t resume_from = 0;   // bytes already in the .part file that we asked the server to skip
  int64_t range_start = -1;  // from Content-Range of a 206 answer
  bool started = false;
  std::string failure;  // set when a callback aborts the transfer
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string line = core::to_lower(std::string_view(data, size * count));
  long long start = 0;
  if (std::sscanf(line.c_str(), "content-range: bytes %lld-", &start) == 1) t->range_start = start;
  if (line.rfind("http/", 0) == 0) t->range_start = -1;  // a new response (after a redirect)
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->started) {
    t->started = true;
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (t->resume_from > 0 && code == 206 && t->range_start != t->resume_from) {
      t->failure = "the server answered a resume at byte " + std::to_string(t->resume_from) +
                   " with a range starting at " + std::to_string(t->range_start);
      if (ftruncate(fileno(t->file), 0) != 0) {
        t->failure += std::string(", ") + std::strerror(errno);
      }
      return 0;  // the next attempt starts from scratch
    }
    if (t->resume_from > 0 && code != 206) {  // the server ignored the Range: start over
      if (std::fflush(t->file) != 0 || ftruncate(fileno(t->file), 0) != 0) {
        t->failure = std::strerror(errno);
        return 0;
      }
      t->resume_from = 0;
    }
  }
  const size_t n = size * count;
  if (std::fwrite(data, 1, n, t->file) != n) {
    t->failure = std::strerror(errno);
    return 0;
  }
  return n;
}

struct CurlHandle {
  CURL* h = curl_easy_init();
  ~CurlHandle() { curl_easy_cleanup(h); }
};

// One GET of `url` appended to `part` (resuming after its current size when `resume`).
// Returns the HTTP status; throws kStorage for transport failures.
long fetch(const std::string& url, const fs::path& part, bool resume) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CurlHandle curl;
  if (!curl.h) core::fail_storage("downloading " + url + ": cannot initialise libcurl");
  Transfer t;
  t.curl = curl.h;
  std::error_code ec;
  if (resume && fs::is_regular_file(part, ec)) {
    t.resume_from = static_cast<int64_t>(fs::file_size(part, ec));
  }
  t.file = std::fopen(part.c_str(), t.resume_from > 0 ? "ab" : "wb");
  if (!t.file) core::fail_storage("cannot open " + part.string() + ": " + std::strerror(errno));
  const std::string range = std::to_string(t.resume_from) + "-";
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.h, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(curl.h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl.h, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.h, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl.h, CURLOPT_LOW_SPEED_LIMIT, 1L);  // abort after 60 s without data
  curl_easy_setopt(curl.h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl.h, CURLOPT_USERAGENT, "ddpipe");
  curl_easy_setopt(curl.h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl.h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl.h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl.h, CURLOPT_WRITEDATA, &t);
  if (t.resume_from > 0) curl_easy_setopt(curl.h, CURLOPT_RANGE, range.c_str());
  const CURLcode rc = curl_easy_perform(curl.h);
  long code = 0;
  curl_easy_getinfo(curl.h, CURLINFO_RESPONSE_CODE, &code);
  // An empty 200 answer to a resume never reached on_body: drop the stale part here.
  if (rc == CURLE_OK && t.resume_from > 0 && !t.started && code != 206) {
    if (ftruncate(fileno(t.file), 0) != 0) t.failure = std::strerror(errno);
  }
  const bool closed = std::fclose(t.file) == 0;
  if (!t.failure.empty()) core::fail_storage("downloading " + url + ": " + t.failure);
  if (rc == CURLE_HTTP_RETURNED_ERROR) return code;
  if (rc != CURLE_OK) {
    core::fail_storage("downloading " + url + ": " + (*error ? error : curl_easy_strerror(rc)));
  }
  if (!closed) core::fail_storage("writing " + part.string() + ": " + std::strerror(errno));
  return code;
}

bool resumable(const std::string& url) {
  const std::string u = core::to_lower(url);
  return u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0;
}

bool md5_matches(const fs::path& file, const std::string& md5_hex, std::string* actual) {
  const std::string got = core::file_digest_hex(file, core::Hasher::Algo::kMd5);
  if (actual) *actual = got;
  return md5_hex.empty() || got == core::to_lower(md5_hex);
}

void publish(const fs::path& part, const fs::path& dest) {
  std::error_code ec;
  fs::rename(part, dest, ec);
  if (ec) {
    core::fail_storage("cannot rename " + part.string() + " to " + dest.string() + ": " +
                       ec.message());
  }
  core::sync_dir(dest.parent_path());
}

// ---- libarchive -----------------------------------------------------------------------------

struct ArchiveReader {
  struct archive* a = archive_read_new();
  ~ArchiveReader() { archive_read_free(a); }
};

// The entry name as a safe relative path ("./" and empty segments dropped), or throws.
fs::path safe_entry_path(const fs::path& archive, const std::string& name) {
  if (name.empty() || name.front() == '/') {
    core::fail_data(archive.string() + ": entry '" + name + "' has an absolute path");
  }
  fs::path out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string seg = name.substr(start, end - start);
    if (seg == "..") core::fail_data(archive.string() + ": entry '" + name + "' contains '..'");
    if (!seg.empty() && seg != ".") out /= seg;
    start = end + 1;
  }
  return out;
}

void extract_into(const fs::path& archive, const fs::path& dir) {
  ArchiveReader r;
  if (!r.a) core::fail_storage("cannot initialise libarchive");
  archive_read_support_filter_all(r.a);
  archive_read_support_format_tar(r.a);
  auto corrupt = [&] {
    const char* msg = archive_error_string(r.a);
    core::fail_data(archive.string() + ": corrupt archive: " + (msg ? msg : "unknown error"));
  };
  if (archive_read_open_filename(r.a, archive.c_str(), 1 << 16) != ARCHIVE_OK) corrupt();
  archive_entry* entry = nullptr;
  for (;;) {
    const int rc = archive_read_next_header(r.a, &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) corrupt();
    const char* name = archive_entry_pathname(entry);
    const fs::path rel = safe_entry_path(archive, name ? name : "");
    if (rel.empty()) continue;  // "./"
    const fs::path target = dir / rel;
    std::error_code ec;
    const auto type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) {
      fs::create_directories(target, ec);
    } else if (type == AE_IFREG && archive_entry_hardlink(entry) == nullptr) {
      fs::create_directories(target.parent_path(), ec);
      if (!ec) {
        const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
          core::fail_storage("cannot create " + target.string() + ": " + std::strerror(errno));
        }
        const int data_rc = archive_read_data_into_fd(r.a, fd);
        ::close(fd);
        if (data_rc < ARCHIVE_WARN) corrupt();
      }
    }  // links, devices and the like are skipped: the datasets need none
    if (ec) core::fail_storage("cannot create " + target.string() + ": " + ec.message());
  }
}

}  // namespace

void download_file(const std::string& url, const std::string& md5_hex, const fs::path& dest) {
  std::error_code ec;
  if (!dest.parent_path().empty()) fs::create_directories(dest.parent_path(), ec);
  if (ec) core::fail_storage("cannot create " + dest.parent_path().string() + ": " + ec.message());
  const fs::path part = fs::path(dest.string() + ".part");
  const bool resume = resumable(url);
  const bool resuming = resume && fs::is_regular_file(part, ec) && fs::file_size(part, ec) > 0;
  nlohmann::json fields = {{"url", url}, {"dest", dest.string()}, {"resume", resuming}};
  core::log::info("data", "downloading", fields);

  // An empty .part is useless for resuming; do not leave one behind after a failure.
  auto drop_empty_part = [&] {
    if (fs::is_regular_file(part, ec) && fs::file_size(part, ec) == 0) fs::remove(part, ec);
  };
  long code = 0;
  try {
    code = fetch(url, part, resume);
    if (code == 416 && resuming) {
      // The part already holds everything the server has: keep it if it is the right file,
      // otherwise fetch the whole file again.
      code = md5_matches(part, md5_hex, nullptr) ? 200 : fetch(url, part, false);
    }
  } catch (...) {
    drop_empty_part();
    throw;
  }
  if (code >= 400) {
    drop_empty_part();
    core::fail_storage("downloading " + url + ": HTTP " + std::to_string(code));
  }
  std::string actual;
  if (!md5_matches(part, md5_hex, &actual)) {
    fs::remove(part, ec);
    core::fail_data("downloading " + url + ": MD5 mismatch: expected " + core::to_lower(md5_hex) +
                    ", got " + actual + " (check data.url and data.md5)");
  }
  if (md5_hex.empty()) core::log::warn("data", "no MD5 given for " + url + ": not verified");
  publish(part, dest);
}

void extract_archive(const fs::path& archive, const fs::path& dest_dir) {
  std::error_code ec;
  if (!fs::is_regular_file(archive, ec)) core::fail_data(archive.string() + ": archive not found");
  if (!dest_dir.parent_path().empty()) fs::create_directories(dest_dir.parent_path(), ec);
  const fs::path tmp = core::temp_path_for(dest_dir);
  fs::create_directories(tmp, ec);
  if (ec) core::fail_storage("cannot create " + tmp.string() + ": " + ec.message());
  try {
    extract_into(archive, tmp);
    fs::rename(tmp, dest_dir, ec);
    if (ec) {
      core::fail_storage("cannot move the extracted archive to " + dest_dir.string() + ": " +
                         ec.message());
    }
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  core::sync_dir(dest_dir.parent_path());
}

fs::path ensure_cifar10(const fs::path& dir, const std::string& url, const std::string& md5_hex) {
  std::error_code ec;
  auto complete = [&](const fs::path& d) {
    for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                          "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
      if (!fs::is_regular_file(d / f, ec)) return false;
    }
    return true;
  };
  if (complete(dir)) return dir;
  const fs::path batches = dir / kCifarBatches;
  if (complete(batches)) return batches;

  const bool created = !fs::exists(dir, ec);
  try {
    const fs::path archive = dir / kCifarArchive;
    if (fs::is_regular_file(archive, ec) && !md5_matches(archive, md5_hex, nullptr)) {
      core::log::warn("data", archive.string() + " has the wrong MD5: downloading it again");
      fs::remove(archive, ec);
    }
    if (!fs::is_regular_file(archive, ec)) download_file(url, md5_hex, archive);
    const fs::path staging = dir / (std::string(core::kTempPrefix) + "cifar10-extract");
    fs::remove_all(staging, ec);
    extract_archive(archive, staging);
    const fs::path found = complete(staging / kCifarBatches) ? staging / kCifarBatches : staging;
    if (!complete(found)) {
      fs::remove_all(staging, ec);
      core::fail_data(archive.string() + ": no CIFAR-10 binary batches (data_batch_1..5.bin, " +
                      "test_batch.bin) in the archive");
    }
    fs::remove_all(batches, ec);
    fs::rename(found, batches, ec);
    if (ec) {
      core::fail_storage("cannot move " + found.string() + " to " + batches.string() + ": " +
                         ec.message());
    }
    fs::remove_all(staging, ec);
    core::sync_dir(dir);
  } catch (...) {
    if (created) fs::remove(dir, ec);  // only if still empty
    throw;
  }
  return batches;
}

}  // namespace ddpipe::data
