#include "train/epoch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "data/sampler.h"
#include "data/stream_order.h"
#include "test_util.h"

namespace ddpipe::train {
namespace {

dist::WorldInfo rank_of(int64_t rank, int64_t world_size) {
  dist::WorldInfo w;
  w.rank = rank;
  w.world_size = world_size;
  return w;
}

EpochSums sums_of(double base, double rss) {
  EpochSums s;
  s.train = {base + 1, base + 2, base + 3};
  s.test.loss_sum = base + 4;
  s.test.correct = base + 5;
  s.test.count = base + 6;
  s.images = base + 7;
  s.steady_images = base + 8;
  s.steady_seconds = base + 9;
  s.peak_rss_mb = rss;
  s.busy_step_seconds = rss / 1000.0;
  return s;
}

// What the allreduce does: the tensors of all ranks, added slot by slot.
TEST(EpochSums, SumOverRanksAddsFieldsKeepsTheLargestRssAndEveryRanksStepTime) {
  const int64_t n = 3;
  torch::Tensor total = torch::zeros({9 + 2 * n}, torch::kDouble);
  const double rss[n] = {300.0, 500.0, 400.0};
  for (int64_t r = 0; r < n; ++r) total += sums_of(10.0 * r, rss[r]).to_tensor(rank_of(r, n));
  ASSERT_EQ(total.numel(), 9 + 2 * n);
  const EpochSums s = EpochSums::from_tensor(total, rank_of(0, n));
  EXPECT_EQ(s.train.loss_sum, 33.0);  // (0 + 1) + (10 + 1) + (20 + 1)
  EXPECT_EQ(s.train.correct, 36.0);
  EXPECT_EQ(s.train.count, 39.0);
  EXPECT_EQ(s.test.loss_sum, 42.0);
  EXPECT_EQ(s.test.correct, 45.0);
  EXPECT_EQ(s.test.count, 48.0);
  EXPECT_EQ(s.images, 51.0);
  EXPECT_EQ(s.steady_images, 54.0);
  EXPECT_EQ(s.steady_seconds, 57.0);
  EXPECT_EQ(s.peak_rss_mb, 500.0);
  EXPECT_EQ(s.rank_busy_step_seconds, (std::vector<double>{0.3, 0.5, 0.4}));
}

TEST(EpochSums, OneRankRoundTrips) {
  const EpochSums s =
      EpochSums::from_tensor(sums_of(1.5, 123.0).to_tensor(rank_of(0, 1)), rank_of(0, 1));
  EXPECT_EQ(s.train.count, 4.5);
  EXPECT_EQ(s.steady_seconds, 10.5);
  EXPECT_EQ(s.peak_rss_mb, 123.0);
}

TEST(Epoch, MetricsFromTheSums) {
  core::Config config;
  const EpochSums total = sums_of(0.0, 200.0);
  EpochTimes times;
  times.train_seconds = 2.0;
  times.epoch_seconds = 3.0;
  auto m = epoch_metrics(config, rank_of(0, 2), 4, 10, total, times, "fp32");
  EXPECT_EQ(m["epoch"], 5);
  EXPECT_DOUBLE_EQ(m["train_loss"].get<double>(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m["train_acc"].get<double>(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m["test_loss"].get<double>(), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m["test_acc"].get<double>(), 5.0 / 6.0);
  EXPECT_EQ(m["test_samples"], 6);
  EXPECT_DOUBLE_EQ(m["images_per_second"].get<double>(), 7.0 / 2.0);
  EXPECT_DOUBLE_EQ(m["steady_images_per_second"].get<double>(), 8.0 / (9.0 / 2));
  EXPECT_EQ(m["peak_rss_mb_max_rank"], 200.0);
  EXPECT_EQ(m["precision"], "fp32");
  EXPECT_DOUBLE_EQ(m["lr"].get<double>(), learning_rate(config.train, 4, 0, 10));
  EXPECT_EQ(m.size(), 16u);
}

TEST(Epoch, LearningRateWarmsUpThenAnneals) {
  core::TrainConfig t;
  t.lr = 0.2;
  t.epochs = 4;
  EXPECT_DOUBLE_EQ(learning_rate(t, 0, 5, 10), 0.2);
  EXPECT_DOUBLE_EQ(learning_rate(t, 2, 0, 10), 0.1);
  t.warmup_epochs = 1;
  EXPECT_DOUBLE_EQ(learning_rate(t, 0, 4, 10), 0.2 * 0.5);
  t.scheduler = "none";
  EXPECT_DOUBLE_EQ(learning_rate(t, 3, 0, 10), 0.2);
}

// torch.optim.lr_scheduler.StepLR(step_size=30, gamma=0.1) stepped once per epoch, as
// torchvision's ImageNet recipe: epochs 0–29 at lr, 30–59 at lr/10, 60–89 at lr/100; constant
// within an epoch, so the step and the epoch's length do not matter.
TEST(Epoch, StepScheduleDecaysEveryStepSizeEpochs) {
  core::TrainConfig t;
  t.lr = 0.1;
  t.epochs = 90;
  t.scheduler = "step";
  t.lr_step_size = 30;
  t.lr_gamma = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(t, 0, 0, 5005), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 29, 5004, 5005), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 30, 0, 5005), 0.1 * 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 59, 17, 100), 0.1 * 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 60, 3, 100), 0.1 * 0.1 * 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 89, 99, 100), 0.1 * 0.1 * 0.1);
  t.lr_step_size = 2;
  t.lr_gamma = 0.5;
  EXPECT_DOUBLE_EQ(learning_rate(t, 1, 0, 10), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 5, 9, 10), 0.1 * 0.25);
  // Warm-up comes first, then the schedule of the epoch.
  t.warmup_epochs = 1;
  EXPECT_DOUBLE_EQ(learning_rate(t, 0, 4, 10), 0.1 * 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(t, 2, 0, 10), 0.1 * 0.5);
}

TEST(Epoch, BatchesSkipStepsTrainedBeforeACheckpoint) {
  core::Config config;
  config.train.batch_size = 4;
  const auto whole = epoch_batches(config, sample_order_of(config, 2), rank_of(1, 2), 30, 3, 0);
  EXPECT_EQ(whole.steps, 4);  // 15 samples on rank 1
  EXPECT_EQ(whole.first_step, 0);
  EXPECT_EQ(whole.indices.size(), 15u);
  const auto rest = epoch_batches(config, sample_order_of(config, 2), rank_of(1, 2), 30, 3, 2);
  EXPECT_EQ(rest.steps, 4);
  EXPECT_EQ(rest.first_step, 2);
  EXPECT_EQ(std::vector<int64_t>(whole.indices.begin() + 8, whole.indices.end()), rest.indices);
  config.train.max_steps_per_epoch = 3;
  const auto cut = epoch_batches(config, sample_order_of(config, 2), rank_of(1, 2), 30, 3, 5);
  EXPECT_EQ(cut.steps, 3);
  EXPECT_EQ(cut.first_step, 3);
  EXPECT_TRUE(cut.indices.empty());
}

// The samples of `step` over all ranks of a world of `world_size`, dealt as `order` says.
std::multiset<int64_t> step_samples(const core::Config& config, const SampleOrder& order,
                                    int64_t world_size, int64_t n, int64_t epoch, int64_t step) {
  std::multiset<int64_t> all;
  for (int64_t r = 0; r < world_size; ++r) {
    const auto b = epoch_batches(config, order, rank_of(r, world_size), n, epoch, step);
    all.insert(b.indices.begin(), b.indices.begin() + b.batch_sizes.front());
  }
  return all;
}

// At the run's own world size the batches are DistributedSampler's, batch_size each.
TEST(Epoch, AtTheRunsWorldSizeBatchesAreDistributedSamplers) {
  core::Config config;
  config.train.batch_size = 4;
  const SampleOrder order = sample_order_of(config, 3);
  EXPECT_EQ(order.global_batch, 12);
  for (int64_t r = 0; r < 3; ++r) {
    const auto b = epoch_batches(config, order, rank_of(r, 3), 31, 2, 0);
    EXPECT_EQ(b.indices, data::distributed_sampler_indices(31, 3, r, true, config.seed, 2, false));
    EXPECT_EQ(b.batch_sizes, (std::vector<int64_t>{4, 4, 3}));  // 11 samples per rank
    EXPECT_EQ(b.step_sizes, (std::vector<int64_t>{12, 12, 9}));
    for (int64_t step = 0; step < 3; ++step) EXPECT_EQ(loss_scale(b, step, rank_of(r, 3)), 1.0);
  }
}

// Resumed at another world size, every step trains on the same samples, each once, and the
// loss scales make the rank-averaged gradient the step's mean.
TEST(Epoch, AnotherWorldSizeSeesTheSameSamplesAtEveryStep) {
  core::Config config;
  config.train.batch_size = 5;
  const SampleOrder order = sample_order_of(config, 2);  // 10 samples per step
  const int64_t n = 37, epoch = 1;
  const auto steps = epoch_batches(config, order, rank_of(0, 2), n, epoch, 0).steps;
  ASSERT_EQ(steps, 4);  // 38 after padding to a multiple of 2
  for (int64_t world : {1, 3, 4}) {
    std::multiset<int64_t> epoch_samples;
    for (int64_t step = 0; step < steps; ++step) {
      const auto same = step_samples(config, order, world, n, epoch, step);
      EXPECT_EQ(same, step_samples(config, order, 2, n, epoch, step)) << world << " " << step;
      epoch_samples.insert(same.begin(), same.end());
      double weight = 0;
      for (int64_t r = 0; r < world; ++r) {
        const auto b = epoch_batches(config, order, rank_of(r, world), n, epoch, step);
        // A sample of rank r weighs scale_r / (world · n_r); the n_r samples together:
        weight += loss_scale(b, step, rank_of(r, world)) / static_cast<double>(world);
      }
      EXPECT_NEAR(weight, 1.0, 1e-12);
    }
    const auto padded = data::distributed_sampler_order(n, 2, true, config.seed, epoch, false);
    EXPECT_EQ(epoch_samples, std::multiset<int64_t>(padded.begin(), padded.end())) << world;
  }
  // A step with fewer samples than ranks cannot be dealt out.
  const std::string e =
      testing::usage_error([&] { epoch_batches(config, order, rank_of(0, 12), n, epoch, 0); });
  EXPECT_NE(e.find("too few for 12 ranks"), std::string::npos) << e;
}

// A sharded split: uneven shards, a buffer of about two shards.
const data::SplitOrder kSharded = data::SplitOrder::sharded({12, 9, 15, 0, 11, 14, 13}, 25);

std::multiset<int64_t> sharded_step_samples(const core::Config& config, const SampleOrder& order,
                                            int64_t world_size, int64_t epoch, int64_t step) {
  std::multiset<int64_t> all;
  for (int64_t r = 0; r < world_size; ++r) {
    const auto b = epoch_batches(config, order, rank_of(r, world_size), kSharded, epoch, step);
    all.insert(b.indices.begin(), b.indices.begin() + b.batch_sizes.front());
  }
  return all;
}

// Over 1, 2 and 3 ranks every sample of a sharded split is trained on exactly once an epoch,
// apart from the padding to a multiple of the world size (the head of the order, repeated);
// the ranks' batches interleaved step by step are the stream order, whatever the world size.
TEST(Epoch, ShardedEpochTrainsEverySampleOnceOnAnyNumberOfRanks) {
  core::Config config;
  config.train.batch_size = 4;
  const int64_t n = kSharded.size, epoch = 2;
  ASSERT_EQ(n, 74);
  const auto stream = data::stream_order(kSharded.shard_samples, 25, config.seed, epoch);
  for (int64_t world : {1, 2, 3}) {
    const SampleOrder order = sample_order_of(config, world);
    std::vector<std::vector<int64_t>> ranks;
    for (int64_t r = 0; r < world; ++r) {
      ranks.push_back(epoch_batches(config, order, rank_of(r, world), kSharded, epoch, 0).indices);
    }
    std::vector<int64_t> interleaved;  // position r + world·i of the order is rank r's i-th
    for (size_t i = 0; i < ranks[0].size(); ++i) {
      for (int64_t r = 0; r < world; ++r) {
        if (i < ranks[static_cast<size_t>(r)].size()) {
          interleaved.push_back(ranks[static_cast<size_t>(r)][i]);
        }
      }
    }
    const int64_t padded = (n + world - 1) / world * world;
    ASSERT_EQ(static_cast<int64_t>(interleaved.size()), padded) << world;
    EXPECT_EQ(std::vector<int64_t>(interleaved.begin(), interleaved.begin() + n), stream);
    EXPECT_EQ(std::vector<int64_t>(interleaved.begin() + n, interleaved.end()),
              std::vector<int64_t>(stream.begin(), stream.begin() + (padded - n)));
    const std::set<int64_t> unique(interleaved.begin(), interleaved.end());
    EXPECT_EQ(static_cast<int64_t>(unique.size()), n);
    EXPECT_EQ(*unique.begin(), 0);
    EXPECT_EQ(*unique.rbegin(), n - 1);
  }
  // Another epoch, another order.
  const SampleOrder order = sample_order_of(config, 1);
  EXPECT_NE(epoch_batches(config, order, rank_of(0, 1), kSharded, epoch, 0).indices,
            epoch_batches(config, order, rank_of(0, 1), kSharded, epoch + 1, 0).indices);
}

// A sharded epoch resumed mid-way trains exactly the steps left, at its own or another world
// size, every step on the same samples.
TEST(Epoch, ShardedEpochResumesAndResizesWithTheSameStepSamples) {
  core::Config config;
  config.train.batch_size = 5;
  const SampleOrder order = sample_order_of(config, 2);  // 10 samples per step
  const int64_t epoch = 1;
  const auto whole = epoch_batches(config, order, rank_of(1, 2), kSharded, epoch, 0);
  ASSERT_EQ(whole.steps, 8);  // 74 samples
  const auto rest = epoch_batches(config, order, rank_of(1, 2), kSharded, epoch, 3);
  EXPECT_EQ(rest.first_step, 3);
  EXPECT_EQ(std::vector<int64_t>(whole.indices.begin() + 15, whole.indices.end()), rest.indices);
  EXPECT_EQ(rest.batch_sizes, (std::vector<int64_t>{5, 5, 5, 5, 2}));
  for (int64_t world : {1, 3, 4}) {
    std::multiset<int64_t> epoch_samples;
    for (int64_t step = 0; step < whole.steps; ++step) {
      const auto same = sharded_step_samples(config, order, world, epoch, step);
      EXPECT_EQ(same, sharded_step_samples(config, order, 2, epoch, step)) << world << " " << step;
      epoch_samples.insert(same.begin(), same.end());
    }
    const auto padded = data::epoch_order(kSharded, 2, config.seed, epoch);
    EXPECT_EQ(epoch_samples, std::multiset<int64_t>(padded.begin(), padded.end())) << world;
  }
}

// What a rank's cache must hold: the schedule of its plan. Without a buffer a rank reads one
// shard after another (at most 2 open at a step boundary); with a buffer of K samples it holds
// fewer than G + K + m samples (G a step over all ranks, m a shard's), while whole shards stay
// open longer: the last of a shard's samples leaves the buffer about K·ln(m) draws after it
// entered (stream_order.h).
TEST(Epoch, ShardedPlanBoundsWhatARankHolds) {
  core::Config config;
  config.train.batch_size = 16;
  const int64_t m = 100, k = 1000, shards = 120;
  for (int64_t world : {1, 2, 3}) {
    const SampleOrder order = sample_order_of(config, world);
    const int64_t g = order.global_batch;
    for (int64_t buffer : {int64_t{0}, k}) {
      const auto split = data::SplitOrder::sharded(std::vector<int64_t>(shards, m), buffer);
      for (int64_t r = 0; r < world; ++r) {
        const auto b = epoch_batches(config, order, rank_of(r, world), split, 0, 0);
        const auto s = data::shard_schedule(b.indices, b.batch_sizes, 0, split.shard_samples);
        EXPECT_EQ(static_cast<int64_t>(s.shards.size()), shards);
        if (buffer == 0) {
          EXPECT_LE(s.peak_open_shards(), 2) << world;
          EXPECT_LE(s.peak_held_samples(), m + g) << world;
          continue;
        }
        const double per_shard = static_cast<double>(m) / static_cast<double>(world);
        // In shards' worth of this rank's samples: about K/m + 2, and never G + K + m samples.
        EXPECT_LT(s.peak_held_samples(), g + k + m) << world;
        EXPECT_LE(static_cast<double>(s.peak_held_samples()) / per_shard,
                  static_cast<double>(k) / m + 2.5)
            << world << " " << r;
        // Open shards: far more than K/m + 2 (the stragglers): about K(1 + ln m)/m (56 here;
        // 46 to 57 measured), below K(2 + ln m)/m + 2.
        EXPECT_GT(s.peak_open_shards(), 3 * (k / m + 2)) << world;
        EXPECT_LE(static_cast<double>(s.peak_open_shards()),
                  static_cast<double>(k) * (2 + std::log(static_cast<double>(m))) / m + 2)
            << world << " " << r;
        // Shards are first needed nearly in stream order: a prefetch can read them ahead.
        for (size_t i = 1; i < s.shards.size(); ++i) {
          EXPECT_LE(s.shards[i - 1].first_step, s.shards[i].first_step);
        }
      }
    }
  }
}

}  // namespace
}  // namespace ddpipe::train
