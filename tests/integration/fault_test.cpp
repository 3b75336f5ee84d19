// Fault tolerance with real processes: a rank killed mid-epoch, restarts, permanent errors,
// a master that never appears.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "model/model.h"
#include "published_state.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe {
namespace {

using testing::run_command;

// A job long enough to be killed in the middle: 6 epochs of 64 steps per rank.
std::string job_args(const std::filesystem::path& store) {
  return " --store " + store.string() +
         " --set cache_dir=" + (store.parent_path() / "cache").string() +
         " --set name=ft --set data.format=synthetic --set data.name=ft-synth"
         " --set data.channels=1 --set data.height=16 --set data.width=16"
         " --set data.train_size=4096 --set data.test_size=64 --set data.classes=4"
         " --set model.width=8 --set train.batch_size=32 --set train.threads=1"
         " --set loader.workers=1 --set deterministic=true --set dist.nproc=2 --epochs 6"
         " --set checkpoint.every_steps=20";
}

std::vector<torch::Tensor> final_state(const std::filesystem::path& store_dir) {
  return testing::published_state(store_dir, "ft", {"resnet-mini", 1, 4, 8});
}

// Runs the job twice, the second time killing rank 1 after the first checkpoint under
// `--max-restarts 2`: the restarted group must end with the same weights, bit for bit.
void expect_identical_after_a_killed_rank(const std::string& extra_args) {
  testing::TempDir dir;
  auto reference =
      run_command(testing::ddpipe_binary() + " run" + job_args(dir / "ref") + extra_args);
  ASSERT_EQ(reference.exit_code, 0) << reference.output;

  // The same job under `--max-restarts 2`; rank 1 gets SIGKILL after the first checkpoint.
  const std::string log = (dir / "faulty.log").string();
  pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    std::string cmd = "exec " + testing::ddpipe_binary() + " run --max-restarts 2" +
                      job_args(dir / "faulty") + extra_args + " > " + log + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  bool killed = false;
  for (int i = 0; i < 6000 && !killed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    bool checkpointed = false;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(dir / "faulty/models/ft/checkpoints", ec)) {
      if (std::filesystem::exists(e.path() / "state.json")) checkpointed = true;
    }
    if (!checkpointed) continue;
    auto ranks = testing::children_of(launcher);
    if (ranks.size() == 2) {
      ASSERT_EQ(kill(ranks[1], SIGKILL), 0);
      killed = true;
    }
  }
  ASSERT_TRUE(killed) << "never saw a checkpoint while two ranks ran";
  int status = 0;
  waitpid(launcher, &status, 0);
  std::ifstream in(log);
  std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("restarting the group"), std::string::npos) << output;
  EXPECT_NE(output.find("resuming from checkpoint"), std::string::npos) << output;

  auto a = final_state(dir / "ref");
  auto b = final_state(dir / "faulty");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
}

TEST(FaultTolerance, KilledRankIsRestartedAndResultIsIdentical) {
  expect_identical_after_a_killed_rank("");
}

// PowerSGD's state (Q, step count, each rank's error feedback) is in the checkpoint: compression
// starts at step 10, the first checkpoint is at step 20.
TEST(FaultTolerance, KilledRankResumesPowerSgdExactly) {
  expect_identical_after_a_killed_rank(
      " --set dist.grad_compression=powersgd --set dist.powersgd_start_step=10");
}

TEST(FaultTolerance, PermanentErrorsAreNotRetried) {
  testing::TempDir dir;
  auto r = run_command(testing::ddpipe_binary() +
                       " launch --max-restarts 3 --nproc-per-node 2 --store " +
                       (dir / "empty").string() + " --dataset never-ingested");
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("is permanent"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("restarting the group"), std::string::npos) << r.output;
  // The failing rank's own error file reached the launcher's summary.
  EXPECT_NE(r.output.find("last_error"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ddpipe ingest"), std::string::npos) << r.output;
}

TEST(FaultTolerance, MasterThatNeverResolvesIsAClearRetryableError) {
  testing::TempDir dir;
  // Ingest first, so that the rendezvous is what fails.
  auto ingest = run_command(testing::ddpipe_binary() + " ingest --store " + (dir / "s").string() +
                            " --set data.format=synthetic --set data.name=x --set data.train_size=8"
                            " --set data.test_size=8 --set data.height=8 --set data.width=8");
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_command("WORLD_SIZE=2 RANK=1 MASTER_ADDR=no-such-master.invalid MASTER_PORT=29999 " +
                       testing::ddpipe_binary() + " train --set dist.rdzv_timeout_s=2 --store " +
                       (dir / "s").string() +
                       " --set data.name=x --set cache_dir=" + (dir / "c").string());
  EXPECT_EQ(r.exit_code, 128) << r.output;
  EXPECT_NE(r.output.find("no-such-master.invalid' did not resolve"), std::string::npos)
      << r.output;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

}  // namespace
}  // namespace ddpipe
