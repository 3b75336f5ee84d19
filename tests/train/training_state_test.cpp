#include "train/training_state.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

#include "core/error.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"
#include "train/checkpoint_files.h"

namespace ddpipe::train {
namespace {

const model::ModelSpec kSpec{"resnet-mini", 1, 4, 4};

core::Config config_with_seed(int64_t seed) {
  core::Config config;
  config.name = "m";
  config.seed = seed;
  config.model.channels_last = true;
  return config;
}

// One optimizer step, so that the optimizer has momentum buffers to save.
void step(TrainingState& state) {
  auto loss = state.net().forward(torch::rand({2, 1, 8, 8})).sum();
  loss.backward();
  state.optimizer().step();
  state.optimizer().zero_grad();
}

TEST(TrainingState, RestoresModelOptimizerRngAndPosition) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path() / "store");
  registry::Registry reg(store);
  const core::Config config = config_with_seed(1);
  TrainingState saved(config, kSpec);
  step(saved);
  saved.position = {2, 3};
  saved.epochs = {{{"epoch", 1}}, {{"epoch", 2}}};
  saved.partial = {1.5, 2.0, 8.0};
  saved.sample_order = {4, 256};
  {
    Checkpointer uploads(reg, "m", dir.path() / "local", 60.0);
    saved.save(uploads, "run-1", "digest-a");
    uploads.flush();
  }
  const torch::Tensor next_random = torch::rand({4});  // the RNG as saved, one draw later

  const registry::CheckpointRef where{2, 3};
  const auto state = reg.checkpoint_state("m", where);
  EXPECT_EQ(state["epoch"], 2);
  EXPECT_EQ(state["step"], 3);
  EXPECT_EQ(state["run_id"], "run-1");
  EXPECT_EQ(state["dataset_digest"], "digest-a");
  EXPECT_EQ(state["partial"],
            nlohmann::json({{"loss_sum", 1.5}, {"correct", 2.0}, {"count", 8.0}}));
  EXPECT_EQ(state["epochs"].size(), 2u);
  EXPECT_NE(state["config"].get<std::string>().find("name: m"), std::string::npos);
  for (const char* file : {"model.pt", "optimizer.pt", "rng.bin"}) {
    EXPECT_TRUE(store.exists("models/m/checkpoints/epoch_2_step_3/" + std::string(file)));
  }

  const core::Config other = config_with_seed(2);
  TrainingState restored(other, kSpec);
  restored.restore(reg, where, "digest-a");
  EXPECT_EQ(restored.position.epoch, 2);
  EXPECT_EQ(restored.position.step, 3);
  EXPECT_EQ(restored.epochs, saved.epochs);
  EXPECT_EQ(restored.partial.count, 8.0);
  EXPECT_EQ(restored.sample_order.world_size, 4);  // the run's, not this state's
  EXPECT_EQ(restored.sample_order.global_batch, 256);
  EXPECT_TRUE(torch::equal(torch::rand({4}), next_random));
  auto a = saved.net().parameters(), b = restored.net().parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], b[i]));
    EXPECT_EQ(a[i].is_contiguous(at::MemoryFormat::ChannelsLast),
              b[i].is_contiguous(at::MemoryFormat::ChannelsLast));
  }
  // The same next step from the same state: the optimizer's momentum came back too.
  torch::manual_seed(9);
  step(saved);
  torch::manual_seed(9);
  step(restored);
  a = saved.net().parameters(), b = restored.net().parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i]));

  try {
    TrainingState(other, kSpec).restore(reg, where, "digest-b");
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("trained on dataset digest-a"), std::string::npos);
  }
}

// A checkpoint an earlier process of the run could only write to local disk (the store was away
// when it was preempted) reaches the store before the restarted run looks for one; another
// run's and an incomplete one (no state.json) do not.
TEST(TrainingState, LocalCheckpointsOfTheRunAreUploadedBeforeResuming) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path() / "store");
  registry::Registry reg(store);
  const core::Config config = config_with_seed(1);
  const auto local = dir.path() / "local";
  TrainingState state(config, kSpec);
  auto write_local = [&](const std::string& run_id, int64_t step) {
    state.position = {1, step};
    Checkpointer away(reg, "m", local / run_id, 0.0);
    state.save(away, run_id, "digest-a");
    away.flush_within(5.0);
  };
  write_local("run-1", 7);
  // Pretend the store never got it: remove it there, keep the local copy.
  for (const auto& o : store.list("models/m/checkpoints/")) store.remove(o.key);
  ASSERT_TRUE(reg.checkpoints("m").empty());
  std::filesystem::create_directories(local / "run-1" / "epoch_1_step_9");  // cut short
  write_local("run-2", 8);
  for (const auto& o : store.list("models/m/checkpoints/")) store.remove(o.key);

  EXPECT_EQ(upload_local_checkpoints(reg, "m", local / "run-1", "run-1"), 1);
  const auto stored = reg.checkpoints("m");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].id(), "epoch_1_step_7");
  EXPECT_EQ(checkpoint_to_resume(reg, config, "run-1")->id(), "epoch_1_step_7");
  EXPECT_EQ(upload_local_checkpoints(reg, "m", local / "run-1", "run-1"), 0);  // already there
  EXPECT_EQ(upload_local_checkpoints(reg, "m", local / "run-2", "run-1"), 0);  // not this run's
}

// A checkpoint's optimizer.pt and rng.bin that are corrupt are refused naming the file (the
// fuzzer found an empty rng.bin handed to memcpy as a null pointer: undefined behaviour).
TEST(CheckpointFiles, CorruptOptimizerAndRngAreDataErrorsNamingTheFile) {
  auto net = model::make_model(kSpec);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const std::string rng = rng_bytes(), saved = optimizer_bytes(opt);
  auto refusal = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const core::Error& e) {
      EXPECT_EQ(e.kind(), core::ErrorKind::kData);
      return e.what();
    }
    return "no core::Error";
  };
  for (const std::string& bad : {std::string(), rng.substr(1), rng + "x"}) {
    const std::string m = refusal([&] { load_rng(bad, "c/rng.bin"); });
    EXPECT_NE(m.find("c/rng.bin"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(load_rng(rng, "c/rng.bin"));
  for (const std::string& bad : {std::string(), saved.substr(0, saved.size() / 2), rng}) {
    const std::string m = refusal([&] { load_optimizer(opt, bad, "c/optimizer.pt"); });
    EXPECT_NE(m.find("c/optimizer.pt"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(load_optimizer(opt, saved, "c/optimizer.pt"));
}

// A state.json whose fields have the wrong type is a data error naming it, not a JSON exception.
TEST(TrainingState, StateJsonOfWrongTypesIsADataError) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path() / "store");
  registry::Registry reg(store);
  const core::Config config = config_with_seed(1);
  TrainingState saved(config, kSpec);
  saved.position = {1, 0};
  {
    Checkpointer uploads(reg, "m", dir.path() / "local", 60.0);
    saved.save(uploads, "run-1", "digest-a");
    uploads.flush();
  }
  const std::string key = "models/m/checkpoints/epoch_1/state.json";
  for (const char* state :
       {R"({"dataset_digest": 5})", R"([1, 2])",
        R"({"dataset_digest": "digest-a", "partial": "x"})",
        R"({"dataset_digest": "digest-a", "sample_order": {"world_size": "4"}})"}) {
    store.put(key, state);
    try {
      TrainingState(config, kSpec).restore(reg, {1, 0}, "digest-a");
      ADD_FAILURE() << state;
    } catch (const core::Error& e) {
      EXPECT_EQ(e.kind(), core::ErrorKind::kData) << e.what();
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  store.put(key, R"({"run_id": 7})");
  EXPECT_FALSE(checkpoint_to_resume(reg, config, "run-1").has_value());
}

}  // namespace
}  // namespace ddpipe::train
