#include "train/training_state.h"

#include <torch/torch.h>

#include "core/error.h"
#include "core/log.h"
#include "train/checkpoint_files.h"

namespace ddpipe::train {
namespace {

using nlohmann::json;

json sums_json(const TrainSums& s) {
  return {{"loss_sum", s.loss_sum}, {"correct", s.correct}, {"count", s.count}};
}

TrainSums sums_from_json(const json& j) {
  return {j.value("loss_sum", 0.0), j.value("correct", 0.0), j.value("count", 0.0)};
}

std::shared_ptr<model::Classifier> fresh_model(const core::Config& config,
                                               const model::ModelSpec& spec) {
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  auto net = model::make_model(spec);
  if (config.model.channels_last) model::to_channels_last(*net);
  return net;
}

// What restore() takes from a checkpoint's state.json.
struct StoredState {
  std::string dataset_digest;
  json epochs;
  TrainSums partial;
  SampleOrder sample_order;  // `current` when the checkpoint has none
  bool has_compression = false;
};

constexpr const char* kCompressionFile = "grad_compression.pt";

StoredState stored_state(const json& state, const std::string& where, SampleOrder current) {
  try {
    StoredState s{state.value("dataset_digest", "?"), state.value("epochs", json::array()),
                  sums_from_json(state.value("partial", json::object())), current,
                  state.contains("grad_compression_state")};
    if (state.contains("sample_order")) {
      const json& o = state["sample_order"];
      s.sample_order = {o.value("world_size", current.world_size),
                        o.value("global_batch", current.global_batch)};
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    core::fail_data(where + ": a field has the wrong type: " + e.what());
  }
}

json order_json(const SampleOrder& o) {
  return {{"world_size", o.world_size}, {"global_batch", o.global_batch}};
}

}  // namespace

SampleOrder sample_order_of(const core::Config& config, int64_t world_size) {
  return {world_size, config.train.batch_size * world_size};
}

TrainingState::TrainingState(const core::Config& config, const model::ModelSpec& spec)
    : config_(config),
      net_(fresh_model(config, spec)),
      optimizer_(net_->parameters(), torch::optim::SGDOptions(config.train.lr)
                                         .momentum(config.train.momentum)
                                         .weight_decay(config.train.weight_decay)
                                         .nesterov(config.train.nesterov)) {}

void TrainingState::save(Checkpointer& uploads, const std::string& run_id,
                         const std::string& dataset_digest) const {
  std::vector<Checkpointer::FileWriter> files{
      {"model.pt", [this] { return model::save_state(*net_); }},
      {"optimizer.pt", [this] { return optimizer_bytes(optimizer_); }},
      {"rng.bin", rng_bytes}};
  if (!compression.empty()) {
    files.push_back({kCompressionFile, [this] { return compression; }});
  }
  json state = {{"epoch", position.epoch},
                {"step", position.step},
                {"run_id", run_id},
                {"dataset_digest", dataset_digest},
                {"config", core::to_yaml(config_)},
                {"epochs", epochs},
                {"partial", sums_json(partial)},
                {"sample_order", order_json(sample_order)}};
  if (!compression.empty()) state["grad_compression_state"] = kCompressionFile;
  uploads.save(position, files, state);
}

void TrainingState::restore(registry::Registry& reg, const registry::CheckpointRef& from,
                            const std::string& dataset_digest) {
  const std::string& name = config_.name;
  const std::string where = registry::Registry::checkpoint_prefix(name, from);  // its files
  const StoredState stored =
      stored_state(reg.checkpoint_state(name, from), where + "state.json", sample_order);
  if (stored.dataset_digest != dataset_digest) {
    core::fail_usage("cannot resume " + name + " from " + from.id() +
                     ": it was trained on dataset " + stored.dataset_digest + ", this run uses " +
                     dataset_digest);
  }
  model::load_state(*net_, reg.read_checkpoint(name, from, "model.pt"), where + "model.pt");
  if (config_.model.channels_last) model::to_channels_last(*net_);
  load_optimizer(optimizer_, reg.read_checkpoint(name, from, "optimizer.pt"),
                 where + "optimizer.pt");
  load_rng(reg.read_checkpoint(name, from, "rng.bin"), where + "rng.bin");
  compression.clear();
  if (stored.has_compression) {
    compression_source = where + kCompressionFile;  // checked when DataParallel loads it
    compression = reg.read_checkpoint(name, from, kCompressionFile);
  }
  position = from;
  epochs = stored.epochs;
  partial = stored.partial;
  sample_order = stored.sample_order;
  core::log::info("train", "resuming from checkpoint",
                  {{"checkpoint", from.id()}, {"epoch", from.epoch}, {"step", from.step}});
}

std::optional<registry::CheckpointRef> checkpoint_to_resume(registry::Registry& reg,
                                                            const core::Config& config,
                                                            const std::string& run_id) {
  auto all = reg.checkpoints(config.name);
  if (config.train.resume) {
    if (all.empty()) core::log::info("train", "no checkpoint to resume from; starting at epoch 1");
    return all.empty() ? std::nullopt : std::optional(all.back());
  }
  if (run_id.empty()) return std::nullopt;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const json state = reg.checkpoint_state(config.name, *it);
    if (state.is_object() && state.contains("run_id") && state["run_id"] == run_id) return *it;
  }
  return std::nullopt;
}

}  // namespace ddpipe::train
