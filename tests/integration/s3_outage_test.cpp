// The S3 store away for 20 seconds in the middle of training: training goes on, checkpoints
// wait on local disk, and appear in the store once radosgw is back (the local radosgw of
// scripts/s3-test-server.sh; skipped without one).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "registry/registry.h"
#include "s3_test_env.h"
#include "storage/s3_store.h"

namespace ddpipe {
namespace {

TEST(S3Outage, TrainingSurvivesTwentySecondsWithoutTheStore) {
  REQUIRE_S3_SERVER();
  testing::TempDir dir;
  const std::string bucket = testing::unique_bucket("outage");
  const std::string url = "s3://" + bucket + "/run";
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  storage::S3Store store(url, *testing::s3_test_settings());
  registry::Registry reg(store);

  const std::string log = (dir / "train.log").string();
  pid_t job = fork();
  ASSERT_GE(job, 0);
  if (job == 0) {
    std::string cmd = testing::s3_env_prefix() + "exec " + testing::ddpipe_binary() +
                      " run --store " + url + " --set cache_dir=" + (dir / "cache").string() +
                      " --set name=outage --set data.format=synthetic --set data.name=outage-synth"
                      " --set data.channels=1 --set data.height=16 --set data.width=16"
                      " --set data.train_size=4096 --set data.test_size=64 --set data.classes=4"
                      " --set model.width=8 --set train.batch_size=32 --set dist.nproc=2"
                      " --set checkpoint.storage_grace_s=300 --set s3.max_retries=1"
                      " --set s3.timeout_s=3 --epochs 60 > " +
                      log + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  // Wait for the first checkpoint in the store, then take radosgw away for 20 s.
  bool first = false;
  for (int i = 0; i < 1200 && !first; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    try {
      first = !reg.checkpoints("outage").empty();
    } catch (const std::exception&) {
    }
  }
  ASSERT_TRUE(first) << "no checkpoint appeared";
  const int64_t before = reg.latest_checkpoint("outage")->epoch;
  auto stop = testing::s3_server_script("rgw-stop");
  ASSERT_EQ(stop.exit_code, 0) << stop.output;
  std::this_thread::sleep_for(std::chrono::seconds(20));
  int status = 0;
  EXPECT_EQ(waitpid(job, &status, WNOHANG), 0) << "training stopped while the store was away";
  auto start = testing::s3_server_script("rgw-start");
  ASSERT_EQ(start.exit_code, 0) << start.output;

  waitpid(job, &status, 0);
  std::ifstream in(log);
  std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("upload failed; training goes on"), std::string::npos) << output;
  EXPECT_NE(output.find("store reachable again"), std::string::npos) << output;
  // Checkpoints made during the outage reached the store afterwards, and the version is there.
  EXPECT_GT(reg.latest_checkpoint("outage")->epoch, before + 1);
  EXPECT_EQ(reg.latest_checkpoint("outage")->epoch, 60);
  EXPECT_FALSE(reg.versions("outage").empty());
}

}  // namespace
}  // namespace ddpipe
