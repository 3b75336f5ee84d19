// ddpipe::train — the arithmetic of one epoch: its learning rate, its batches on this rank, the
// sums every rank contributes and the metrics they become.
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "data/stream_order.h"
#include "dist/world.h"
#include "eval/inference.h"
#include "train/training_state.h"

namespace ddpipe::dist {
class Communicator;
}

namespace ddpipe::train {

// The learning rate at `step` of `steps` in `epoch` (0-based): linear warm-up over
// train.warmup_epochs, then constant (scheduler "none"), cosine annealing over train.epochs
// ("cosine") or lr × lr_gamma^⌊epoch / lr_step_size⌋ ("step", torch's StepLR), both stepped per
// epoch. A pure function of its arguments, so a resumed run continues the same schedule.
double learning_rate(const core::TrainConfig& t, int64_t epoch, int64_t step, int64_t steps);

// This rank's share of an epoch, dealt as the run's SampleOrder says: the epoch's order
// (data::epoch_order of the split at order.world_size: DistributedSampler's for a split in
// memory, the shard stream's for a sharded one) is cut into steps of order.global_batch
// samples (the last one possibly smaller) and at most train.max_steps_per_epoch steps; rank r
// of a world of M takes positions r, r + M, … of each step. At the run's own world size that is
// exactly DistributedSampler's per-rank order; at another one every step still trains on the
// same samples, in unequal shares when M does not divide the step. The first `first_step` steps
// (trained before a mid-epoch checkpoint) are left out. Throws core::Error(kUsage) when a rank
// would get no sample in a step (more ranks than the step has samples).
struct EpochBatches {
  std::vector<int64_t> indices;      // what is left to train on, in order
  std::vector<int64_t> batch_sizes;  // this rank's batches, one per step left
  std::vector<int64_t> step_sizes;   // the samples of those steps over all ranks
  int64_t steps = 0;                 // steps of the whole epoch
  int64_t first_step = 0;            // the step `indices` begins with
};
EpochBatches epoch_batches(const core::Config& config, const SampleOrder& order,
                           const dist::WorldInfo& world, const data::SplitOrder& split,
                           int64_t epoch, int64_t skip_steps);
// The same for a split of `train_size` samples in memory.
EpochBatches epoch_batches(const core::Config& config, const SampleOrder& order,
                           const dist::WorldInfo& world, int64_t train_size, int64_t epoch,
                           int64_t skip_steps);

// What the mean loss of this rank's batch at `step` is multiplied by before backward so that
// the gradient averaged over ranks is the mean over the whole step's samples: 1 when the ranks
// have equal shares.
double loss_scale(const EpochBatches& batches, int64_t step, const dist::WorldInfo& world);

// What a rank contributes to an epoch's metrics. sum_over_ranks() adds them up in one allreduce.
struct EpochSums {
  TrainSums train;              // the epoch's steps, including those before a resume
  eval::EvalSums test;          // this rank's share of the test split
  double images = 0.0;          // trained on by this process (not before a resume)
  double steady_images = 0.0;   // after the warm-up steps
  double steady_seconds = 0.0;  // the time they took
  double peak_rss_mb = 0.0;     // this rank's; in a sum over ranks, the largest
  // This rank's mean step time without the wait for other ranks (wall time of a step minus its
  // exposed communication): what tells a straggler from the ranks that wait for it.
  double busy_step_seconds = 0.0;
  std::vector<double> rank_busy_step_seconds;  // in a sum over ranks: every rank's, by rank

  // The rank's sums as one double tensor: the fields in a fixed order, then one peak-RSS slot
  // and one busy-step-time slot per rank (this rank's filled, the others 0), so that a sum
  // carries every rank's.
  torch::Tensor to_tensor(const dist::WorldInfo& world) const;
  // The inverse, for a tensor summed over ranks: peak_rss_mb is the largest slot.
  static EpochSums from_tensor(const torch::Tensor& t, const dist::WorldInfo& world);
};
EpochSums sum_over_ranks(const EpochSums& local, dist::Communicator& comm,
                         const dist::WorldInfo& world);

// Seconds measured on this rank (rank 0's are reported).
struct EpochTimes {
  double train_seconds = 0.0;  // the training steps
  double epoch_seconds = 0.0;  // steps, evaluation and the allreduce
  double data_wait_seconds = 0.0;
  double comm_exposed_seconds = 0.0;
  double comm_seconds = 0.0;
};

// The metrics object of epoch `epoch` (0-based; reported 1-based) from the sums over ranks —
// the keys of docs/storage.md: train_loss, train_acc, test_loss, test_acc, test_samples, lr,
// images_per_second, steady_images_per_second, peak_rss_mb_max_rank, the times and precision.
nlohmann::json epoch_metrics(const core::Config& config, const dist::WorldInfo& world,
                             int64_t epoch, int64_t steps, const EpochSums& total,
                             const EpochTimes& times, const std::string& precision);

}  // namespace ddpipe::train
