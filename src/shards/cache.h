// ddpipe::shards — a bounded local cache of shards: cache_dir/shards/<sha256>.tar.
//
// fetch() returns the local path of a shard, downloading it from the store when absent. A
// download goes to a temporary name (".tmp-…", never taken for a shard), is checked against the
// shard's SHA-256 and renamed into place, so a file named <sha256>.tar is always complete and
// correct. A cached file is not hashed again (the name is the promise); a hit refreshes its
// modification time, which is the recency the eviction uses.
//
// After each download, least-recently-used shards are removed until the folder holds at most
// max_bytes of shards — never the one being returned (which alone may exceed max_bytes).
// Several processes (the ranks of a node) may share the folder: every file appears by an atomic
// rename, and removing a file another process has open is harmless on Linux (its reader keeps
// the data). Files removed by another process between a listing and a removal are skipped. A
// path just returned but not yet opened can be evicted by another process only when max_bytes
// holds less than one shard per process (it is the most recent file): size it for several.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "shards/index.h"
#include "storage/store.h"

namespace ddpipe::shards {

class ShardCache {
 public:
  // `store` must outlive the cache. The folder is created on first use.
  ShardCache(storage::Store& store, std::filesystem::path cache_dir, uint64_t max_bytes);
  // Stops the prefetch thread (after the download in progress, if any).
  ~ShardCache();
  ShardCache(const ShardCache&) = delete;
  ShardCache& operator=(const ShardCache&) = delete;

  // The local path of `shard`. Throws core::Error(kData) naming the shard and both digests when
  // the downloaded bytes do not hash to shard.sha256 (nothing is kept), kNotFound when the
  // store lacks it, kStorage for IO failures. Thread-safe; a shard being fetched by the
  // prefetch thread is waited for, not downloaded twice.
  std::filesystem::path fetch(const ShardRef& shard);
  // Queues shards for download in order on a background thread (after those queued before).
  // Errors there are logged and left to the fetch() of that shard, which tries again.
  void prefetch(const std::vector<ShardRef>& shards);

  const std::filesystem::path& folder() const { return folder_; }
  // Bytes of complete shards in the folder now (all processes').
  uint64_t cached_bytes() const;

 private:
  std::filesystem::path path_of(const ShardRef& shard) const;
  void download(const ShardRef& shard, const std::filesystem::path& dest);
  void evict(const std::filesystem::path& keep);
  void prefetch_loop();

  storage::Store& store_;
  std::filesystem::path folder_;
  uint64_t max_bytes_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::set<std::string> in_flight_;  // sha256s being downloaded by this process
  std::deque<ShardRef> queue_;
  bool stopping_ = false;
  std::thread prefetcher_;  // started by the first prefetch()
};

}  // namespace ddpipe::shards
