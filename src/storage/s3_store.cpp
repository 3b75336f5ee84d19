#include "storage/s3_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"

namespace ddpipe::storage {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxParts = 10000;  // S3's limit per multipart upload

uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// The configured part size, or more (whole MiB) when the object would need over 10000 parts.
uint64_t part_size_for(uint64_t size, uint64_t configured) {
  if (ceil_div(size, configured) <= kMaxParts) return configured;
  return ceil_div(ceil_div(size, kMaxParts), 1 << 20) << 20;
}

// Runs fn(worker, i) for i in [0, n) on up to `workers` threads. After the first failure no new
// items start; the first exception is rethrown once every thread has stopped.
void parallel_for(size_t n, int workers, const std::function<void(size_t, size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  std::mutex mu;
  auto run = [&](size_t worker) {
    for (size_t i; !failed && (i = next++) < n;) {
      try {
        fn(worker, i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first) first = std::current_exception();
        failed = true;
      }
    }
  };
  size_t threads = std::min(n, static_cast<size_t>(std::max(1, workers)));
  std::vector<std::thread> pool;
  for (size_t w = 1; w < threads; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& t : pool) t.join();
  if (first) std::rethrow_exception(first);
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

void pwrite_all(int fd, const char* data, size_t n, uint64_t offset, const fs::path& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      core::fail_storage("writing " + path.string() + ": " + std::strerror(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

}  // namespace

namespace {

StoreUrl s3_url(const std::string& url) {
  StoreUrl u = parse_store_url(url);
  if (!u.is_s3()) core::fail_usage("store " + url + ": expected s3://bucket[/prefix]");
  return u;
}

}  // namespace

S3Store::S3Store(const StoreUrl& url, S3Settings settings)
    : client_(std::move(settings)),
      bucket_(url.bucket),
      prefix_(url.prefix.empty() ? "" : url.prefix + "/") {}

S3Store::S3Store(const std::string& url, S3Settings settings)
    : S3Store(s3_url(url), std::move(settings)) {}

std::string S3Store::url() const {
  return "s3://" + bucket_ + (prefix_.empty() ? "" : "/" + prefix_.substr(0, prefix_.size() - 1));
}

std::string S3Store::object_key(const std::string& key) const {
  validate_key(key);
  return prefix_ + key;
}

void S3Store::with_bucket(const std::function<void()>& write) {
  try {
    write();
  } catch (const S3Error& e) {
    if (e.code() != "NoSuchBucket") throw;
    create_bucket_racing();
    write();
  }
}

// Writers that find the bucket missing at once all create it; RGW answers all but one 409
// BucketAlreadyExists although the bucket is theirs. Such a writer carries on: if the bucket
// really is another account's, its write fails with that account's AccessDenied.
void S3Store::create_bucket_racing() {
  try {
    client_.create_bucket(bucket_);
  } catch (const S3Error& e) {
    if (e.code() != "BucketAlreadyExists") throw;
  }
}

void S3Store::abort_upload(const std::string& object, const std::string& upload_id) {
  try {
    client_.abort_multipart_upload(bucket_, object, upload_id);
  } catch (const std::exception& e) {
    core::log::warn(
        "storage",
        "could not abort a failed multipart upload; its parts stay in the bucket "
        "until it is aborted",
        {{"bucket", bucket_}, {"key", object}, {"upload_id", upload_id}, {"error", e.what()}});
  }
}

void S3Store::upload(const std::string& key, uint64_t size, const PartReader& read) {
  const std::string object = object_key(key);
  const S3Settings& s = client_.settings();
  if (size <= s.part_size) {
    std::string scratch;
    std::string_view body = read(0, size, scratch);
    with_bucket([&] { client_.put_object(bucket_, object, body); });
    return;
  }
  const uint64_t part = part_size_for(size, s.part_size);
  const size_t parts = ceil_div(size, part);
  std::string upload_id;
  with_bucket([&] { upload_id = client_.create_multipart_upload(bucket_, object); });
  std::vector<std::string> etags(parts);
  std::vector<std::string> scratch(static_cast<size_t>(std::max(1, s.parallel_parts)));
  try {
    parallel_for(parts, s.parallel_parts, [&](size_t worker, size_t i) {
      uint64_t offset = i * part;
      size_t n = static_cast<size_t>(std::min(part, size - offset));
      etags[i] = client_.upload_part(bucket_, object, upload_id, static_cast<int>(i + 1),
                                     read(offset, n, scratch[worker]));
    });
    scratch.clear();
    try {
      client_.complete_multipart_upload(bucket_, object, upload_id, etags);
    } catch (const S3Error& e) {
      // A retried Complete whose first attempt succeeded finds the upload gone.
      if (e.code() != "NoSuchUpload") throw;
      auto head = client_.head_object(bucket_, object);
      std::string suffix = "-" + std::to_string(parts);
      bool done = head && head->size == size && head->etag.size() > suffix.size() &&
                  head->etag.compare(head->etag.size() - suffix.size(), suffix.size(), suffix) == 0;
      if (!done) throw;
    }
  } catch (...) {
    abort_upload(object, upload_id);
    throw;
  }
}

void S3Store::download(const std::string& key, const std::function<void(uint64_t)>& start,
                       const ChunkWriter& write) {
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    try {
      download_once(key, start, write, attempt > 1);
      return;
    } catch (const S3Error& e) {
      if (e.status() != 412 || attempt == kAttempts) throw;
    }
  }
}

void S3Store::download_once(const std::string& key, const std::function<void(uint64_t)>& start,
                            const ChunkWriter& write, bool replaced) {
  const std::string object = object_key(key);
  auto head = client_.head_object(bucket_, object);
  if (!head) core::fail_not_found("store " + url() + ": no object '" + key + "'");
  const uint64_t size = head->size;
  const std::string& etag = head->etag;
  const S3Settings& s = client_.settings();

  // A single-part object's ETag is the MD5 of its content (except under SSE-KMS/SSE-C): read it
  // in one stream and check that. Multipart objects are read in parallel ranges, and there only
  // the byte counts can be checked (their ETag depends on how they were cut into parts).
  const bool md5_etag = head->etag_is_digest && etag.size() == 32 && is_hex(etag);
  const size_t ranges = md5_etag || size <= s.part_size ? 1 : ceil_div(size, s.part_size);

  if (replaced && ranges == 1) {  // one GET, no If-Match: the version it returns, whole
    std::string body;
    S3Sink sink{[&] { body.clear(); }, [&](const char* p, size_t n) { body.append(p, n); }};
    const S3Head got = client_.get_object(bucket_, object, sink);
    const bool md5 = got.etag_is_digest && got.etag.size() == 32 && is_hex(got.etag);
    core::Hasher hasher(core::Hasher::Algo::kMd5);
    hasher.update(body);
    if (md5 && hasher.hex_digest() != got.etag) {
      core::fail_storage("S3 GetObject s3://" + bucket_ + "/" + object +
                         ": content does not match its ETag (expected MD5 " + got.etag + ")");
    }
    start(body.size());
    if (!body.empty()) write(0, body.data(), body.size());
    return;
  }
  start(size);
  std::string digest;
  parallel_for(ranges, s.parallel_parts, [&](size_t, size_t i) {
    const uint64_t offset = i * s.part_size;
    const uint64_t n = ranges == 1 ? size : std::min(s.part_size, size - offset);
    uint64_t got = 0;
    std::optional<core::Hasher> md5;
    S3Sink sink{[&] {
                  got = 0;
                  if (md5_etag) md5.emplace(core::Hasher::Algo::kMd5);
                },
                [&](const char* p, size_t len) {
                  if (got + len > n) {
                    core::fail_storage("S3 GetObject s3://" + bucket_ + "/" + object +
                                       ": the server sent more bytes than the object holds");
                  }
                  write(offset + got, p, len);
                  if (md5) md5->update(p, len);
                  got += len;
                }};
    client_.get_object(bucket_, object, sink, ranges == 1 ? 0 : offset, ranges == 1 ? 0 : n, etag);
    if (got != n) {
      throw core::Error(core::ErrorKind::kRetryable, "S3 GetObject s3://" + bucket_ + "/" + object +
                                                         ": received " + std::to_string(got) +
                                                         " of " + std::to_string(n) + " bytes");
    }
    if (md5) digest = md5->hex_digest();
  });
  if (md5_etag && digest != etag) {
    core::fail_storage("S3 GetObject s3://" + bucket_ + "/" + object +
                       ": content does not match its ETag (expected MD5 " + etag + ", got " +
                       digest + "); it was corrupted in transit or in the store");
  }
}

void S3Store::put(const std::string& key, std::string_view bytes) {
  upload(key, bytes.size(),
         [&](uint64_t offset, size_t n, std::string&) { return bytes.substr(offset, n); });
}

void S3Store::put_file(const std::string& key, const fs::path& source) {
  int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) core::fail_storage("cannot open " + source.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    core::fail_storage("cannot stat " + source.string() + ": " + std::strerror(errno));
  }
  try {
    upload(key, static_cast<uint64_t>(st.st_size),
           [&](uint64_t offset, size_t n, std::string& scratch) -> std::string_view {
             scratch.resize(n);
             size_t done = 0;
             while (done < n) {
               ssize_t r =
                   ::pread(fd, scratch.data() + done, n - done, static_cast<off_t>(offset + done));
               if (r < 0 && errno == EINTR) continue;
               if (r <= 0) {
                 core::fail_storage("reading " + source.string() + ": " +
                                    (r < 0 ? std::strerror(errno) : "file shrank during upload"));
               }
               done += static_cast<size_t>(r);
             }
             return scratch;
           });
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

std::string S3Store::get(const std::string& key) {
  std::string out;
  download(
      key, [&](uint64_t size) { out.assign(size, '\0'); },
      [&](uint64_t offset, const char* p, size_t n) { std::memcpy(&out[offset], p, n); });
  return out;
}

void S3Store::get_file(const std::string& key, const fs::path& dest) {
  fs::path tmp;
  int fd = -1;
  auto start = [&](uint64_t size) {
    if (fd >= 0) {  // the object changed while being read: start the copy again
      ::close(fd);
      ::unlink(tmp.c_str());
      fd = -1;
    }
    std::error_code ec;
    if (!dest.parent_path().empty()) fs::create_directories(dest.parent_path(), ec);
    if (ec)
      core::fail_storage("cannot create directory " + dest.parent_path().string() + ": " +
                         ec.message());
    tmp = core::temp_path_for(dest);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) core::fail_storage("cannot create " + tmp.string() + ": " + std::strerror(errno));
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      core::fail_storage("cannot size " + tmp.string() + ": " + std::strerror(errno));
    }
  };
  try {
    download(key, start,
             [&](uint64_t offset, const char* p, size_t n) { pwrite_all(fd, p, n, offset, tmp); });
    // Atomic (rename) but not fsync'ed: a local copy that can be fetched again, as cp makes.
    ::close(fd);
    fd = -1;
    if (::rename(tmp.c_str(), dest.c_str()) != 0) {
      core::fail_storage("cannot publish " + dest.string() + ": " + std::strerror(errno));
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    if (!tmp.empty()) ::unlink(tmp.c_str());
    throw;
  }
}

bool S3Store::exists(const std::string& key) {
  return client_.head_object(bucket_, object_key(key)).has_value();
}

std::vector<ObjectInfo> S3Store::list(const std::string& prefix) {
  validate_prefix(prefix);
  std::vector<S3ObjectInfo> objects;
  try {
    objects = client_.list_objects(bucket_, prefix_ + prefix);
  } catch (const S3Error& e) {
    if (e.code() == "NoSuchBucket") return {};  // as a local store that was never written
    throw;
  }
  std::vector<ObjectInfo> out;
  for (auto& o : objects) {
    std::string key = o.key.substr(prefix_.size());
    bool temp = key.rfind(core::kTempPrefix, 0) == 0 ||
                key.find("/" + std::string(core::kTempPrefix)) != std::string::npos;
    if (!temp) out.push_back({key, o.size});
  }
  return out;
}

void S3Store::remove(const std::string& key) { client_.delete_object(bucket_, object_key(key)); }

void S3Store::copy(const std::string& from, const std::string& to) {
  const std::string src = object_key(from), dst = object_key(to);
  auto head = client_.head_object(bucket_, src);
  if (!head) core::fail_not_found("store " + url() + ": no object '" + from + "'");
  const S3Settings& s = client_.settings();
  if (head->size <= s.max_single_copy) {
    client_.copy_object(bucket_, src, bucket_, dst);
    return;
  }
  const uint64_t part = part_size_for(head->size, s.part_size);
  const size_t parts = ceil_div(head->size, part);
  std::string upload_id = client_.create_multipart_upload(bucket_, dst);
  std::vector<std::string> etags(parts);
  try {
    parallel_for(parts, s.parallel_parts, [&](size_t, size_t i) {
      uint64_t first = i * part, last = std::min(head->size, first + part) - 1;
      etags[i] = client_.upload_part_copy(bucket_, dst, upload_id, static_cast<int>(i + 1), bucket_,
                                          src, first, last);
    });
    client_.complete_multipart_upload(bucket_, dst, upload_id, etags);
  } catch (...) {
    abort_upload(dst, upload_id);
    throw;
  }
}

}  // namespace ddpipe::storage
