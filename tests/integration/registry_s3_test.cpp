// The model registry's commands and processes racing on one alias, on S3 (the test Ceph RGW).
#include <atomic>
#include <thread>

#include "hostile_registry_cases.h"
#include "registry_cli_cases.h"
#include "s3_test_env.h"
#include "storage/s3_store.h"

namespace ddpipe {
namespace {

TEST(RegistryS3, PromoteGateHistoryRollbackDiffRmGc) {
  REQUIRE_S3_SERVER();
  const std::string bucket = testing::unique_bucket("reg");
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  const std::string url = "s3://" + bucket + "/team";
  storage::S3Store store(url, *testing::s3_test_settings());
  testing::check_registry_commands({store, url, testing::s3_env_prefix()});
}

// Hostile model, alias and version names and alias files (e.g. {"version": "../../etc"}) are
// refused on S3 as on a local store, and nothing is written beside the store's prefix.
TEST(RegistryS3, HostileNamesAndAliasFilesAreRefused) {
  REQUIRE_S3_SERVER();
  const std::string bucket = testing::unique_bucket("names");
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  storage::S3Store store("s3://" + bucket + "/team", *testing::s3_test_settings());
  testing::check_registry_refuses_hostile_names(store);
  storage::S3Store whole("s3://" + bucket, *testing::s3_test_settings());
  for (const storage::ObjectInfo& o : whole.list("")) {
    EXPECT_EQ(o.key.rfind("team/models/m/", 0), 0u) << "written beside the store: " << o.key;
  }
}

TEST(RegistryS3, ConcurrentPromotionProcessesOneWinsNothingLost) {
  REQUIRE_S3_SERVER();
  const std::string bucket = testing::unique_bucket("race");
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  const std::string url = "s3://" + bucket;
  storage::S3Store store(url, *testing::s3_test_settings());
  for (int round = 0; round < 3; ++round) {
    testing::check_concurrent_promotions({store, url, testing::s3_env_prefix()}, 4);
    for (const auto& o : store.list("models/race/")) store.remove(o.key);
  }
}

// Threads racing on one alias, each building on the same head (real contention every round):
// exactly one wins per round, and the history holds exactly the winners.
TEST(RegistryS3, ConcurrentMovesFromThreadsOneWinsPerRound) {
  REQUIRE_S3_SERVER();
  const std::string bucket = testing::unique_bucket("threads");
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  storage::S3Store store("s3://" + bucket, *testing::s3_test_settings());
  registry::Registry setup(store);
  setup.move_alias("m", "prod", testing::publish_version(store, "m", 0.1), {});
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> vs;
    for (int i = 0; i < 3; ++i) vs.push_back(testing::publish_version(store, "m", 0.2 + i * 0.1));
    const std::string head = setup.resolve("m", "prod");
    std::atomic<int> wins{0}, conflicts{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        registry::Registry reg(store);
        try {
          reg.move_alias("m", "prod", vs[t], {}, head);
          ++wins;
        } catch (const registry::AliasConflict&) {
          ++conflicts;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wins.load(), 1) << "round " << round;
    EXPECT_EQ(conflicts.load(), 2) << "round " << round;
  }
  const auto h = setup.alias_history("m", "prod");
  ASSERT_EQ(h.size(), 4u);
  for (size_t i = 1; i < h.size(); ++i) EXPECT_EQ(h[i].parent, h[i - 1].key);
  EXPECT_EQ(store.list("models/m/alias_history/prod/").size(), 4u);  // losers removed theirs
}

TEST(RegistryS3, KeepLastTrimsCheckpointsOfAKilledAndResumedRun) {
  REQUIRE_S3_SERVER();
  testing::TempDir dir;
  const std::string bucket = testing::unique_bucket("keep");
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  const std::string url = "s3://" + bucket + "/artifacts";
  storage::S3Store store(url, *testing::s3_test_settings());
  testing::check_keep_last_in_killed_run({store, url, testing::s3_env_prefix()}, dir.path());
}

}  // namespace
}  // namespace ddpipe
