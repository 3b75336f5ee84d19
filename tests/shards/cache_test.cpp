// shards/cache.h: downloads checked against the shard's SHA-256, least-recently-used eviction
// under max_bytes, prefetching ahead without downloading twice.
#include "shards/cache.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/fs.h"
#include "core/hash.h"
#include "fixtures.h"
#include "shards_fixtures.h"
#include "test_util.h"

namespace ddpipe::shards {
namespace {

namespace fs = std::filesystem;
using core::ErrorKind;
using ddpipe::testing::CountingStore;
using ddpipe::testing::throws_error;

// Puts a shard of `size` bytes of `fill` into the store's pool and returns its reference.
ShardRef put_shard(storage::Store& store, char fill, size_t size) {
  const std::string bytes(size, fill);
  ShardRef r;
  r.sha256 = core::sha256_hex(bytes);
  r.key = shard_key("pets", r.sha256);
  r.bytes = size;
  r.samples = 1;
  r.first_key = "train-0000000000";
  store.put(r.key, bytes);
  return r;
}

void tick() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

TEST(ShardCache, FetchDownloadsOnceAndChecksTheDigest) {
  ddpipe::testing::TempDir dir;
  CountingStore store(dir / "store");
  const ShardRef a = put_shard(store, 'a', 5000);
  ShardCache cache(store, dir / "cache", 1 << 20);
  const fs::path p = cache.fetch(a);
  EXPECT_EQ(p, dir / "cache" / "shards" / (a.sha256 + ".tar"));
  EXPECT_EQ(core::read_file(p), std::string(5000, 'a'));
  EXPECT_EQ(cache.fetch(a), p);
  EXPECT_EQ(store.gets, 1) << "a hit does not download";
  EXPECT_EQ(cache.cached_bytes(), 5000u);
}

TEST(ShardCache, ADigestMismatchNamesTheShardAndBothDigestsAndKeepsNothing) {
  ddpipe::testing::TempDir dir;
  CountingStore store(dir / "store");
  ShardRef a = put_shard(store, 'a', 100);
  const std::string claimed = core::sha256_hex("something else");
  store.put(shard_key("pets", claimed), std::string(100, 'a'));  // wrong bytes under its name
  a.key = shard_key("pets", claimed);
  a.sha256 = claimed;
  ShardCache cache(store, dir / "cache", 1 << 20);
  EXPECT_TRUE(throws_error([&] { cache.fetch(a); }, ErrorKind::kData,
                           {a.key, claimed, core::sha256_hex(std::string(100, 'a'))}));
  EXPECT_TRUE(fs::is_empty(dir / "cache" / "shards")) << "no file, not even a temporary one";
  ShardRef absent = a;
  absent.sha256 = std::string(64, 'f');
  absent.key = shard_key("pets", absent.sha256);
  EXPECT_TRUE(throws_error([&] { cache.fetch(absent); }, ErrorKind::kNotFound, {}));
}

TEST(ShardCache, EvictsTheLeastRecentlyUsedUnderMaxBytes) {
  ddpipe::testing::TempDir dir;
  CountingStore store(dir / "store");
  const ShardRef a = put_shard(store, 'a', 1000), b = put_shard(store, 'b', 1000),
                 c = put_shard(store, 'c', 1000), d = put_shard(store, 'd', 1000);
  ShardCache cache(store, dir / "cache", 2500);
  cache.fetch(a);
  tick();
  cache.fetch(b);
  tick();
  cache.fetch(a);  // a is now more recent than b
  tick();
  const fs::path pc = cache.fetch(c);  // 3000 bytes: b goes
  EXPECT_TRUE(fs::exists(pc));
  EXPECT_FALSE(fs::exists(dir / "cache" / "shards" / (b.sha256 + ".tar")));
  EXPECT_TRUE(fs::exists(dir / "cache" / "shards" / (a.sha256 + ".tar")));
  EXPECT_LE(cache.cached_bytes(), 2500u);
  tick();
  cache.fetch(d);  // then a
  EXPECT_FALSE(fs::exists(dir / "cache" / "shards" / (a.sha256 + ".tar")));
  EXPECT_EQ(cache.cached_bytes(), 2000u);
}

TEST(ShardCache, TheShardReturnedIsKeptEvenOverMaxBytes) {
  ddpipe::testing::TempDir dir;
  CountingStore store(dir / "store");
  const ShardRef a = put_shard(store, 'a', 300), big = put_shard(store, 'z', 5000);
  ShardCache cache(store, dir / "cache", 1000);
  cache.fetch(a);
  tick();
  const fs::path p = cache.fetch(big);
  EXPECT_EQ(core::read_file(p).size(), 5000u);
  EXPECT_EQ(cache.cached_bytes(), 5000u) << "the other one went";
}

TEST(ShardCache, TwoCachesOnOneFolderShareIt) {
  ddpipe::testing::TempDir dir;
  CountingStore store(dir / "store");
  const ShardRef a = put_shard(store, 'a', 1000);
  ShardCache rank0(store, dir / "cache", 1 << 20), rank1(store, dir / "cache", 1 << 20);
  EXPECT_EQ(rank0.fetch(a), rank1.fetch(a));
  EXPECT_EQ(store.gets, 1);
}

TEST(ShardCache, PrefetchFetchesAheadInOrderWithoutDownloadingTwice) {
  ddpipe::testing::TempDir dir;
  CountingStore store(dir / "store");
  std::vector<ShardRef> shards;
  for (char c = 'a'; c < 'k'; ++c) shards.push_back(put_shard(store, c, 20000));
  ShardCache cache(store, dir / "cache", 1 << 20);
  cache.prefetch(shards);
  for (size_t i = 0; i < shards.size(); ++i) {
    EXPECT_EQ(core::read_file(cache.fetch(shards[i])),
              std::string(20000, static_cast<char>('a' + i)));
  }
  EXPECT_EQ(store.gets, static_cast<int>(shards.size()));
  for (int i = 0; i < 100 && cache.cached_bytes() < 200000u; ++i) tick();
  EXPECT_EQ(cache.cached_bytes(), 200000u);
}

}  // namespace
}  // namespace ddpipe::shards
