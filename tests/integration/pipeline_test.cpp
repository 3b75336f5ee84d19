// The whole pipeline through the ddpipe binary: ingest → launch 2 ranks → evaluate → version,
// resume equivalence, and the errors a user sees.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "model/model.h"
#include "published_state.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe {
namespace {

using testing::run_command;

// A tiny synthetic job that trains in seconds.
std::string tiny_job(const std::filesystem::path& store, const std::string& extra = "") {
  return testing::ddpipe_binary() + " run --store " + store.string() +
         " --set cache_dir=" + (store.parent_path() / "cache").string() +
         " --set name=tiny --set data.format=synthetic --set data.name=tiny-synth"
         " --set data.channels=1 --set data.height=12 --set data.width=12"
         " --set data.train_size=384 --set data.test_size=101 --set data.classes=4"
         " --set model.width=4 --set train.batch_size=32 --set train.threads=1"
         " --set loader.workers=1 --set deterministic=true --set dist.nproc=2 " +
         extra;
}

std::vector<torch::Tensor> final_state(const std::filesystem::path& store_dir) {
  return testing::published_state(store_dir, "tiny", {"resnet-mini", 1, 4, 4});
}

TEST(Pipeline, RunPublishesVersionCheckpointsAndMetrics) {
  testing::TempDir dir;
  auto r = run_command(tiny_job(dir / "store", "--epochs 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Model version:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ddpipe predict"), std::string::npos);

  storage::LocalStore store(dir / "store");
  registry::Registry reg(store);
  std::string v = reg.resolve("tiny", "latest");
  auto m = reg.manifest_json("tiny", v);
  EXPECT_EQ(m["world_size"], 2);
  ASSERT_EQ(m["epochs"].size(), 2u);
  // Every test sample counted exactly once although 101 does not split evenly over 2 ranks.
  EXPECT_EQ(m["epochs"][1]["test_samples"], 101);
  EXPECT_EQ(m["dataset"]["digest"].get<std::string>().size(), 64u);
  EXPECT_TRUE(store.exists("models/tiny/checkpoints/epoch_1/state.json"));
  EXPECT_TRUE(store.exists("models/tiny/checkpoints/epoch_2/model.pt"));
  // The run's metrics and its step history, with the version's stamp.
  const auto metrics = store.list("metrics/tiny/metrics_v");
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[0].key, "metrics/tiny/metrics_" + v.substr(6) + ".json");
  EXPECT_EQ(metrics[1].key, "metrics/tiny/metrics_" + v.substr(6) + ".steps.jsonl");
  // The confusion matrix of the last evaluation counts every test sample once.
  EXPECT_EQ(m["evaluation"]["samples"], 101);
  EXPECT_EQ(m["evaluation"]["confusion_matrix"].size(), m["dataset"]["classes"].size());
  EXPECT_TRUE(store.exists("models/tiny/" + v + "/report.html"));
  EXPECT_EQ(store.list("datasets/tiny-synth/").size(), 6u);  // 5 objects + latest pointer

  auto list =
      run_command(testing::ddpipe_binary() + " models list --store " + (dir / "store").string());
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find(v), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("model_latest"), std::string::npos) << list.output;

  // Second run: the dataset is already stored, nothing is ingested again.
  auto again = run_command(tiny_job(dir / "store", "--epochs 1"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("already"), std::string::npos) << again.output;
  EXPECT_EQ(reg.versions("tiny").size(), 2u);
}

TEST(Pipeline, ResumeGivesIdenticalParameters) {
  testing::TempDir dir;
  const std::string constant_lr = "--set train.scheduler=none ";
  auto full = run_command(tiny_job(dir / "full", constant_lr + "--epochs 2"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  auto first = run_command(tiny_job(dir / "resumed", constant_lr + "--epochs 1"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto second = run_command(tiny_job(dir / "resumed", constant_lr + "--epochs 2 --resume"));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("resuming from checkpoint"), std::string::npos) << second.output;

  auto a = final_state(dir / "full");
  auto b = final_state(dir / "resumed");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
}

TEST(Pipeline, CosineResumeAfterCrashIsIdentical) {
  // A crash after epoch 1 of a 2-epoch cosine job: the newest checkpoint is epoch 1.
  testing::TempDir dir;
  auto full = run_command(tiny_job(dir / "full", "--epochs 2"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  auto crashed = run_command(tiny_job(dir / "crashed", "--epochs 2"));
  ASSERT_EQ(crashed.exit_code, 0) << crashed.output;
  std::filesystem::remove_all(dir / "crashed/models/tiny");
  // Recreate the state as the crash left it: only epoch 1 was checkpointed.
  std::filesystem::create_directories(dir / "crashed/models/tiny/checkpoints");
  std::filesystem::copy(dir / "full/models/tiny/checkpoints/epoch_1",
                        dir / "crashed/models/tiny/checkpoints/epoch_1");
  auto resumed = run_command(tiny_job(dir / "crashed", "--epochs 2 --resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  auto a = final_state(dir / "full");
  auto b = final_state(dir / "crashed");
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
}

TEST(Pipeline, BadConfigStartsNothing) {
  testing::TempDir dir;
  auto r = run_command(tiny_job(dir / "store", "--set train.epochs=0 --set model.arch=vgg"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("train.epochs: must be between 1 and"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model.arch: must be one of"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "store")) << "something was started";
}

TEST(Pipeline, TrainWithoutIngestIsNotFoundOnEveryRank) {
  testing::TempDir dir;
  auto r = run_command(testing::ddpipe_binary() + " launch --nproc-per-node 2 --store " +
                       (dir / "empty").string() + " --dataset never-ingested");
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("ddpipe ingest"), std::string::npos) << r.output;
}

TEST(Pipeline, EvalAndConfigShow) {
  testing::TempDir dir;
  auto r = run_command(tiny_job(dir / "store", "--epochs 1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto ev = run_command(testing::ddpipe_binary() + " eval --store " + (dir / "store").string() +
                        " --model tiny --dataset tiny-synth --cache-dir " +
                        (dir / "cache").string() + " 2>/dev/null");
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  auto j = nlohmann::json::parse(ev.output);
  EXPECT_EQ(j["samples"], 101);
  EXPECT_GE(j["accuracy"].get<double>(), 0.0);

  auto show = run_command(testing::ddpipe_binary() + " config show --epochs 3");
  ASSERT_EQ(show.exit_code, 0);
  EXPECT_NE(show.output.find("epochs: 3"), std::string::npos) << show.output;
}

}  // namespace
}  // namespace ddpipe
