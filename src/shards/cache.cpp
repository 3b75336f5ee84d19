#include "shards/cache.h"

#include <algorithm>
#include <tuple>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"

namespace ddpipe::shards {
namespace fs = std::filesystem;
namespace {

struct CachedFile {
  fs::file_time_type mtime;
  std::string name;
  uint64_t size = 0;
};

// The complete shards in `folder` (temporary downloads left out); vanished files are skipped.
std::vector<CachedFile> cached_files(const fs::path& folder) {
  std::vector<CachedFile> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(folder, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(core::kTempPrefix, 0) == 0 || it->path().extension() != ".tar") continue;
    std::error_code e1, e2;
    CachedFile f{fs::last_write_time(it->path(), e1), name, fs::file_size(it->path(), e2)};
    if (!e1 && !e2) out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

ShardCache::ShardCache(storage::Store& store, fs::path cache_dir, uint64_t max_bytes)
    : store_(store), folder_(std::move(cache_dir) / "shards"), max_bytes_(max_bytes) {}

ShardCache::~ShardCache() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (prefetcher_.joinable()) prefetcher_.join();
}

fs::path ShardCache::path_of(const ShardRef& shard) const {
  if (!is_sha256_hex(shard.sha256)) {
    core::fail_usage("shard " + shard.key + ": '" + shard.sha256 + "' is not a SHA-256 hex digest");
  }
  return folder_ / (shard.sha256 + ".tar");
}

void ShardCache::download(const ShardRef& shard, const fs::path& dest) {
  std::error_code ec;
  fs::create_directories(folder_, ec);
  if (ec) core::fail_storage("cannot create " + folder_.string() + ": " + ec.message());
  const fs::path tmp = core::temp_path_for(dest);
  try {
    store_.get_file(shard.key, tmp);
    const std::string got = core::file_digest_hex(tmp, core::Hasher::Algo::kSha256);
    if (got != shard.sha256) {
      core::fail_data("shard " + shard.key + " from " + store_.url() +
                      " is corrupt: its SHA-256 is " + got + ", the index says " + shard.sha256);
    }
    fs::rename(tmp, dest, ec);
    if (ec)
      core::fail_storage("cannot rename " + tmp.string() + " to " + dest.string() + ": " +
                         ec.message());
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

fs::path ShardCache::fetch(const ShardRef& shard) {
  const fs::path path = path_of(shard);
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return in_flight_.count(shard.sha256) == 0; });
  std::error_code ec;
  if (fs::exists(path, ec)) {
    fs::last_write_time(path, fs::file_time_type::clock::now(), ec);  // recency for the LRU
    if (!ec) return path;  // else evicted by another process in between: download again
  }
  in_flight_.insert(shard.sha256);
  lock.unlock();
  try {
    download(shard, path);
  } catch (...) {
    lock.lock();
    in_flight_.erase(shard.sha256);
    changed_.notify_all();
    throw;
  }
  lock.lock();
  in_flight_.erase(shard.sha256);
  changed_.notify_all();
  lock.unlock();
  evict(path);
  return path;
}

void ShardCache::evict(const fs::path& keep) {
  std::vector<CachedFile> files = cached_files(folder_);
  uint64_t total = 0;
  for (const auto& f : files) total += f.size;
  if (total <= max_bytes_) return;
  std::sort(files.begin(), files.end(), [](const CachedFile& a, const CachedFile& b) {
    return std::tie(a.mtime, a.name) < std::tie(b.mtime, b.name);
  });
  for (const CachedFile& f : files) {
    if (total <= max_bytes_) break;
    if (f.name == keep.filename().string()) continue;
    std::error_code ec;
    fs::remove(folder_ / f.name, ec);  // absent: another process evicted it first
    total -= f.size;
    core::log::debug("cache", "evicted shard " + f.name);
  }
}

uint64_t ShardCache::cached_bytes() const {
  uint64_t total = 0;
  for (const auto& f : cached_files(folder_)) total += f.size;
  return total;
}

void ShardCache::prefetch(const std::vector<ShardRef>& shards) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.insert(queue_.end(), shards.begin(), shards.end());
  if (!prefetcher_.joinable()) prefetcher_ = std::thread([this] { prefetch_loop(); });
  changed_.notify_all();
}

void ShardCache::prefetch_loop() {
  for (;;) {
    ShardRef next;
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      fetch(next);
    } catch (const std::exception& e) {
      core::log::warn("cache", "prefetch failed", {{"shard", next.key}, {"error", e.what()}});
    }
  }
}

}  // namespace ddpipe::shards
