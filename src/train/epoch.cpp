#include "train/epoch.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/stream_order.h"
#include "dist/communicator.h"

namespace ddpipe::train {
namespace {

// The summed fields of EpochSums in their slot order (the RSS slots follow).
template <class Sums, class F>
void for_each_sum(Sums& s, F&& f) {
  f(s.train.loss_sum);
  f(s.train.correct);
  f(s.train.count);
  f(s.test.loss_sum);
  f(s.test.correct);
  f(s.test.count);
  f(s.images);
  f(s.steady_images);
  f(s.steady_seconds);
}
constexpr int64_t kSummedFields = 9;

}  // namespace

double learning_rate(const core::TrainConfig& t, int64_t epoch, int64_t step, int64_t steps) {
  double progress =
      static_cast<double>(epoch) + static_cast<double>(step) / std::max<int64_t>(1, steps);
  if (t.warmup_epochs > 0 && progress < t.warmup_epochs) {
    return t.lr * (progress + 1.0 / std::max<int64_t>(1, steps)) / t.warmup_epochs;
  }
  if (t.scheduler == "none") return t.lr;
  if (t.scheduler == "step") {
    return t.lr * std::pow(t.lr_gamma, static_cast<double>(epoch / t.lr_step_size));
  }
  // CosineAnnealingLR(T_max = epochs), stepped once per epoch, as the original job.
  return 0.5 * t.lr * (1.0 + std::cos(M_PI * static_cast<double>(epoch) / t.epochs));
}

EpochBatches epoch_batches(const core::Config& config, const SampleOrder& order,
                           const dist::WorldInfo& world, int64_t train_size, int64_t epoch,
                           int64_t skip_steps) {
  return epoch_batches(config, order, world, data::SplitOrder::in_memory(train_size), epoch,
                       skip_steps);
}

EpochBatches epoch_batches(const core::Config& config, const SampleOrder& order,
                           const dist::WorldInfo& world, const data::SplitOrder& split,
                           int64_t epoch, int64_t skip_steps) {
  const std::vector<int64_t> all = data::epoch_order(split, order.world_size, config.seed, epoch);
  const auto total = static_cast<int64_t>(all.size());
  const int64_t step_batch = order.global_batch;
  EpochBatches b;
  b.steps = (total + step_batch - 1) / step_batch;
  if (config.train.max_steps_per_epoch > 0) {
    b.steps = std::min(b.steps, config.train.max_steps_per_epoch);
  }
  // A mid-epoch checkpoint: the steps before it were already trained on.
  b.first_step = std::min(skip_steps, b.steps);
  for (int64_t step = b.first_step; step < b.steps; ++step) {
    const int64_t begin = step * step_batch, end = std::min(total, begin + step_batch);
    if (end - begin < world.world_size) {
      core::fail_usage("epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(step + 1) +
                       " has " + std::to_string(end - begin) + " samples: too few for " +
                       std::to_string(world.world_size) + " ranks (the run deals out " +
                       std::to_string(step_batch) + " samples per step)");
    }
    const size_t before = b.indices.size();
    for (int64_t i = begin + world.rank; i < end; i += world.world_size) {
      b.indices.push_back(all[static_cast<size_t>(i)]);
    }
    b.batch_sizes.push_back(static_cast<int64_t>(b.indices.size() - before));
    b.step_sizes.push_back(end - begin);
  }
  return b;
}

double loss_scale(const EpochBatches& batches, int64_t step, const dist::WorldInfo& world) {
  const auto i = static_cast<size_t>(step - batches.first_step);
  const int64_t mine = batches.batch_sizes[i] * world.world_size;
  const int64_t whole = batches.step_sizes[i];
  return mine == whole ? 1.0 : static_cast<double>(mine) / static_cast<double>(whole);
}

torch::Tensor EpochSums::to_tensor(const dist::WorldInfo& world) const {
  std::vector<double> slots;
  for_each_sum(*this, [&](double x) { slots.push_back(x); });
  slots.resize(kSummedFields + 2 * world.world_size, 0.0);
  slots[kSummedFields + world.rank] = peak_rss_mb;
  slots[kSummedFields + world.world_size + world.rank] = busy_step_seconds;
  return torch::tensor(slots, torch::kDouble);
}

EpochSums EpochSums::from_tensor(const torch::Tensor& t, const dist::WorldInfo& world) {
  auto s = t.accessor<double, 1>();
  EpochSums sums;
  int64_t i = 0;
  for_each_sum(sums, [&](double& x) { x = s[i++]; });
  for (int64_t r = 0; r < world.world_size; ++r) {
    sums.peak_rss_mb = std::max(sums.peak_rss_mb, s[kSummedFields + r]);
    sums.rank_busy_step_seconds.push_back(s[kSummedFields + world.world_size + r]);
  }
  return sums;
}

EpochSums sum_over_ranks(const EpochSums& local, dist::Communicator& comm,
                         const dist::WorldInfo& world) {
  std::vector<torch::Tensor> sums{local.to_tensor(world)};
  comm.allreduce_sum(sums);
  return EpochSums::from_tensor(sums[0], world);
}

nlohmann::json epoch_metrics(const core::Config& config, const dist::WorldInfo& world,
                             int64_t epoch, int64_t steps, const EpochSums& total,
                             const EpochTimes& times, const std::string& precision) {
  const double steady_ips = total.steady_seconds > 0
                                ? total.steady_images / (total.steady_seconds / world.world_size)
                                : 0.0;
  return {{"epoch", epoch + 1},
          {"train_loss", total.train.loss_sum / total.train.count},
          {"train_acc", total.train.correct / total.train.count},
          {"test_loss", total.test.loss_sum / total.test.count},
          {"test_acc", total.test.correct / total.test.count},
          {"test_samples", static_cast<int64_t>(total.test.count)},
          {"lr", learning_rate(config.train, epoch, 0, steps)},
          {"train_seconds", times.train_seconds},
          {"epoch_seconds", times.epoch_seconds},
          {"images_per_second", total.images / times.train_seconds},
          {"steady_images_per_second", steady_ips},
          {"peak_rss_mb_max_rank", total.peak_rss_mb},
          {"data_wait_seconds", times.data_wait_seconds},
          {"comm_exposed_seconds", times.comm_exposed_seconds},
          {"comm_seconds", times.comm_seconds},
          {"precision", precision}};
}

}  // namespace ddpipe::train
