// Training from the sharded form on the S3 test server (scripts/s3-test-server.sh; skipped
// without one): `ddpipe run` ingests a coloured image folder into shards in a bucket and 2 ranks
// train from it through a shard cache smaller than the dataset.
#include <gtest/gtest.h>

#include "colour_folder.h"
#include "s3_test_env.h"
#include "storage/s3_store.h"

namespace ddpipe {
namespace {

using testing::run_command;

TEST(S3ShardedTraining, TwoRanksTrainFromShardsInABucket) {
  REQUIRE_S3_SERVER();
  testing::TempDir dir;
  testing::write_colour_folder(dir / "folder", 80);
  const std::string bucket = testing::unique_bucket("shtrain");
  const std::string store_url = "s3://" + bucket + "/artifacts";
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  const auto r =
      run_command(testing::s3_env_prefix() + testing::ddpipe_binary() + " run --store " +
                  store_url + " --set cache_dir=" + (dir / "cache").string() +
                  " --set name=colours --set data.format=image-folder --data-path " +
                  (dir / "folder").string() +
                  " --set data.name=colours --set data.form=sharded --set features.image_size=16"
                  " --set data.shard_mb=1 --set data.cache_gb=0.004 --set data.shuffle_buffer=64"
                  " --set model.width=8 --set train.batch_size=16 --set train.threads=1"
                  " --set loader.workers=2 --set dist.nproc=2 --epochs 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  storage::S3Store store(store_url, *testing::s3_test_settings());
  EXPECT_GE(store.list("datasets/colours/shards/").size(), 8u) << "several shards in the bucket";
  const double acc = testing::test_accuracy(r.output);
  std::cout << "test accuracy from shards on S3: " << acc << "\n";
  EXPECT_GE(acc, testing::kMinAccuracy) << r.output;
}

}  // namespace
}  // namespace ddpipe
