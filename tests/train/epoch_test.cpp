#include "train/epoch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

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

TEST(Epoch, BatchesSkipStepsTrainedBeforeACheckpoint) {
  core::Config config;
  config.train.batch_size = 4;
  const auto whole = epoch_batches(config, rank_of(1, 2), 30, 3, 0);
  EXPECT_EQ(whole.steps, 4);  // 15 samples on rank 1
  EXPECT_EQ(whole.first_step, 0);
  EXPECT_EQ(whole.indices.size(), 15u);
  const auto rest = epoch_batches(config, rank_of(1, 2), 30, 3, 2);
  EXPECT_EQ(rest.steps, 4);
  EXPECT_EQ(rest.first_step, 2);
  EXPECT_EQ(std::vector<int64_t>(whole.indices.begin() + 8, whole.indices.end()), rest.indices);
  config.train.max_steps_per_epoch = 3;
  const auto cut = epoch_batches(config, rank_of(1, 2), 30, 3, 5);
  EXPECT_EQ(cut.steps, 3);
  EXPECT_EQ(cut.first_step, 3);
  EXPECT_TRUE(cut.indices.empty());
}

}  // namespace
}  // namespace ddpipe::train
