#include "registry/registry.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fs.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::registry {
namespace {

TEST(Registry, PublishResolveAndList) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  std::string v1 = reg.publish("m", {{"model.pt", "w1"}}, {{"final", {{"test_acc", 0.5}}}});
  std::string v2 = reg.publish("m", {{"model.pt", "w2"}}, {{"final", {{"test_acc", 0.9}}}});
  EXPECT_NE(v1, v2);
  EXPECT_EQ(v1.rfind("model_v", 0), 0u);
  EXPECT_EQ(reg.resolve("m", "latest"), v2);
  EXPECT_EQ(reg.resolve("m", "model_latest"), v2);
  EXPECT_EQ(reg.read("m", v1, "model.pt"), "w1");
  EXPECT_EQ(reg.versions("m"), (std::vector<std::string>{v1, v2}));
  EXPECT_EQ(reg.models(), std::vector<std::string>{"m"});
  EXPECT_EQ(reg.manifest_json("m", v2)["version"], v2);
  EXPECT_TRUE(store.exists("models/m/" + v2 + "/manifest.json"));
  EXPECT_TRUE(store.exists("models/m/model_latest"));

  reg.set_alias("m", "production", v1);
  EXPECT_EQ(reg.resolve("m", "production"), v1);
  EXPECT_EQ(reg.aliases("m").at("production"), v1);
}

TEST(Registry, IncompleteVersionIsInvisible) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  std::string v1 = reg.publish("m", {{"model.pt", "w1"}}, Manifest{});
  // A crashed publish: the weights are there, the manifest never was written.
  store.put("models/m/model_v99990101_000000/model.pt", "partial");
  EXPECT_EQ(reg.versions("m"), std::vector<std::string>{v1});
  EXPECT_EQ(reg.resolve("m", "latest"), v1);
  EXPECT_THROW(reg.set_alias("m", "prod", "model_v99990101_000000"), core::Error);
}

TEST(Registry, UnknownThingsAreNotFound) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  try {
    reg.resolve("nope", "latest");
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("no model named 'nope'"), std::string::npos);
  }
  EXPECT_THROW(reg.resolve("m", "model_v1"), core::Error);
  EXPECT_THROW(reg.publish("../evil", {}, Manifest{}), core::Error);
}

// Uploads a checkpoint of one model.pt, written to a local directory first as the trainer does.
void upload(Registry& reg, const std::filesystem::path& local, const CheckpointRef& where,
            const std::string& weights, int epoch) {
  const auto dir = local / where.id();
  core::write_file_atomic(dir / "model.pt", weights);
  core::write_file_atomic(dir / "state.json", nlohmann::json{{"epoch", epoch}}.dump());
  reg.upload_checkpoint("m", where, dir);
}

TEST(Registry, CheckpointsNewestComplete) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path() / "store");
  Registry reg(store);
  EXPECT_FALSE(reg.latest_checkpoint("m").has_value());
  upload(reg, dir.path() / "local", {1, 0}, "a", 1);
  upload(reg, dir.path() / "local", {2, 0}, "b", 2);
  upload(reg, dir.path() / "local", {1, 30}, "mid", 1);
  store.put("models/m/checkpoints/epoch_3/model.pt", "incomplete");
  store.put("models/m/checkpoints/epoch_x/state.json", "{}");
  auto all = reg.checkpoints("m");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].id(), "epoch_1_step_30");
  EXPECT_TRUE(store.exists("models/m/checkpoints/epoch_1_step_30/model.pt"));
  auto last = reg.latest_checkpoint("m");
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->id(), "epoch_2");
  EXPECT_EQ(reg.read_checkpoint("m", *last, "model.pt"), "b");
  EXPECT_EQ(reg.checkpoint_state("m", *last)["epoch"], 2);
  std::string key = reg.write_metrics("m", "20260101_000000", {{"x", 1}});
  EXPECT_EQ(key, "metrics/m/metrics_v20260101_000000.json");
}

// A checkpoint written to a local directory is uploaded from it, files first, state.json last.
TEST(Registry, UploadCheckpointFromDirectory) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path() / "store");
  Registry reg(store);
  const auto local = dir.path() / "local" / "epoch_4";
  core::write_file_atomic(local / "model.pt", "weights");
  core::write_file_atomic(local / "optimizer.pt", "momentum");
  core::write_file_atomic(local / "state.json", R"({"epoch": 4})");
  core::write_file_atomic(local / ".tmp-model.pt-1-x", "left by a crash");
  reg.upload_checkpoint("m", {4, 0}, local);
  EXPECT_EQ(store.list("models/m/checkpoints/epoch_4/").size(), 3u);  // no temporary file
  auto last = reg.latest_checkpoint("m");
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->id(), "epoch_4");
  EXPECT_EQ(reg.read_checkpoint("m", *last, "model.pt"), "weights");
  EXPECT_EQ(reg.read_checkpoint("m", *last, "optimizer.pt"), "momentum");
  EXPECT_EQ(reg.checkpoint_state("m", *last)["epoch"], 4);
  // Without state.json nothing is published as complete.
  std::filesystem::remove(local / "state.json");
  EXPECT_THROW(reg.upload_checkpoint("m", {5, 0}, local), core::Error);
  EXPECT_EQ(reg.latest_checkpoint("m")->id(), "epoch_4");
}

}  // namespace
}  // namespace ddpipe::registry
