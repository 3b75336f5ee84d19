// The sharded form on S3 (the test server of scripts/s3-test-server.sh): an interrupted ingest
// resumed, the index read back, every image once, and the cache fetching shards from the bucket.
#include <gtest/gtest.h>

#include "core/fs.h"
#include "fixtures.h"
#include "s3_test_env.h"
#include "shards/cache.h"
#include "shards/ingest.h"
#include "shards_fixtures.h"
#include "storage/s3_store.h"

namespace ddpipe::shards {
namespace {

TEST(ShardsS3, InterruptedIngestResumesAndTheCacheFetchesFromTheBucket) {
  REQUIRE_S3_SERVER();
  ddpipe::testing::TempDir dir;
  const int files = ddpipe::testing::write_image_folder(dir / "images", {"x", "y"}, 14, 11);
  const std::string bucket = ddpipe::testing::unique_bucket("shards");
  ddpipe::testing::EmptyBucketAtEnd cleanup(*ddpipe::testing::s3_test_settings(), bucket);
  storage::S3Store store("s3://" + bucket + "/team", *ddpipe::testing::s3_test_settings());

  IngestOptions o;
  o.root = dir / "images";
  o.name = "pets";
  o.shard_mb = 1;
  o.workers = 1;
  o.show_progress = false;
  o.after_shard = [](const ShardRef&) { throw std::runtime_error("simulated crash"); };
  EXPECT_THROW(ingest_image_folder(o, store), std::runtime_error);
  EXPECT_FALSE(store.exists(latest_key("pets")));

  o.after_shard = nullptr;
  o.workers = 2;
  const IngestReport r = ingest_image_folder(o, store);
  EXPECT_EQ(r.shards_resumed, 1);
  EXPECT_EQ(r.shards_built, r.shards - 1);
  EXPECT_EQ(r.train_samples + r.test_samples, files);

  const DatasetIndex index = read_index(store, "pets", latest_digest(store, "pets"));
  const auto train = ddpipe::testing::read_split(store, index.train);
  const auto test = ddpipe::testing::read_split(store, index.test);
  EXPECT_EQ(static_cast<int>(train.size() + test.size()), files);

  ShardCache cache(store, dir / "cache", 1 << 30);
  for (const auto& s : index.train.shards) {
    EXPECT_EQ(core::read_file(cache.fetch(s)).size(), s.bytes) << s.key;
  }
}

}  // namespace
}  // namespace ddpipe::shards
