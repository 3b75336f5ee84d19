// The model registry's commands and processes racing on one alias, on S3 (the test Ceph RGW).
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

}  // namespace
}  // namespace ddpipe
