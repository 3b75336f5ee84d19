// ddpipe::train — what a checkpoint holds: the model, its optimizer, the RNG and where training
// is. A checkpoint at `epoch_<n>_step_<k>` is written as
//   model.pt      parameters and buffers (model::save_state)
//   optimizer.pt  the optimizer's archive (a momentum buffer per parameter)
//   rng.bin       the default CPU generator's state (augmentation, dropout)
//   grad_compression.pt  with dist.grad_compression=powersgd: its step count, Q and every
//                 rank's error feedback (dist::BucketReducer::state_bytes)
//   state.json    {epoch, step, run_id, dataset_digest, config (YAML), epochs (metrics so far),
//                 partial (sums of the epoch's first k steps), sample_order}; written last
// and restoring it continues exactly where the run was: the same batches, bit for bit.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

#include "core/config.h"
#include "model/model.h"
#include "registry/registry.h"
#include "train/checkpointer.h"
#include "train/sgd.h"

namespace ddpipe::train {

// Running sums over training steps: loss × samples, correct predictions, samples.
struct TrainSums {
  double loss_sum = 0.0;
  double correct = 0.0;
  double count = 0.0;
};

// How a run deals its samples out, fixed when it starts and kept by every checkpoint:
// DistributedSampler's world size and the samples of one step over all ranks (the global batch,
// train.batch_size × that world size). A run resumed at another world size keeps both, so that
// every step trains on the same samples (epoch.h).
struct SampleOrder {
  int64_t world_size = 1;
  int64_t global_batch = 1;
};
SampleOrder sample_order_of(const core::Config& config, int64_t world_size);

class TrainingState {
 public:
  // A fresh model built from config.seed (identical on every rank), in channels-last layout if
  // model.channels_last, and its SGD optimizer. `config` must outlive the state.
  TrainingState(const core::Config& config, const model::ModelSpec& spec);

  model::Classifier& net() { return *net_; }
  FusedSGD& optimizer() { return optimizer_; }

  // Where training is: `position.epoch` epochs done and `position.step` steps of the next.
  registry::CheckpointRef position;
  nlohmann::json epochs = nlohmann::json::array();  // metrics of the epochs done
  TrainSums partial;         // sums of the `position.step` steps done in the current epoch
  SampleOrder sample_order;  // the run's; restore() takes the checkpoint's
  // The gradient compression's state (dist::DataParallel::compression_state), "" for none.
  std::string compression;
  std::string compression_source;  // the checkpoint file restore() read it from

  // Writes a checkpoint of this state at `position` through `uploads` (local disk now, the
  // store in the background). The files are serialised one at a time as they are written.
  void save(Checkpointer& uploads, const std::string& run_id,
            const std::string& dataset_digest) const;
  // Restores model, optimizer, RNG, position, sample order and compression state from the stored
  // checkpoint `from` of config.name (a checkpoint without a sample order keeps the current one).
  // Throws core::Error(kUsage) if it was trained on another dataset, kData or kStorage for
  // unreadable files.
  void restore(registry::Registry& reg, const registry::CheckpointRef& from,
               const std::string& dataset_digest);

 private:
  const core::Config& config_;
  std::shared_ptr<model::Classifier> net_;
  FusedSGD optimizer_;
};

// The checkpoint to continue from: with train.resume the newest of config.name, else the
// newest written by `run_id` (a restarted pod or group), else none.
std::optional<registry::CheckpointRef> checkpoint_to_resume(registry::Registry& reg,
                                                            const core::Config& config,
                                                            const std::string& run_id);

}  // namespace ddpipe::train
