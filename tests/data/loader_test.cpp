#include "data/loader.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <numeric>

#include "data/formats.h"
#include "fixtures.h"

namespace ddpipe::data {
namespace {

namespace dt = ddpipe::testing;
using core::ErrorKind;

std::vector<int64_t> shuffled(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = (i * 37 + 11) % n;  // n prime to 37
  return v;
}

class LoaderTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(LoaderTest, YieldsEveryIndexInOrder) {
  const Dataset d = make_synthetic("syn", 50, 10, 3, 6, 5, 7, 3);
  const auto indices = shuffled(50);
  Augment aug{true, 2, true, true, {}, {}};
  LoaderOptions opt;
  opt.batch_size = 8;
  opt.train = true;
  opt.seed = 5;
  opt.epoch = 2;
  opt.workers = GetParam();
  opt.prefetch = 2;
  BatchLoader loader(d, d.train, indices, aug, opt);
  EXPECT_EQ(loader.num_batches(), 7);
  size_t pos = 0;
  int64_t batches = 0;
  std::vector<float> want(static_cast<size_t>(d.image_bytes()));
  while (auto b = loader.next()) {
    ++batches;
    const int64_t size = b->labels.size(0);
    EXPECT_EQ(size, batches < 7 ? 8 : 2);
    EXPECT_EQ(b->images.sizes(), (std::vector<int64_t>{size, 3, 6, 5}));
    EXPECT_EQ(b->images.dtype(), torch::kFloat32);
    EXPECT_EQ(b->labels.dtype(), torch::kInt64);
    EXPECT_TRUE(b->images.is_contiguous());
    for (int64_t i = 0; i < size; ++i, ++pos) {
      const int64_t index = indices[pos];
      EXPECT_EQ(b->labels[i].item<int64_t>(), d.train.labels[static_cast<size_t>(index)]);
      transform_image(d, d.train, index, aug, true, 5, 2, want.data());
      EXPECT_TRUE(torch::equal(b->images[i], torch::from_blob(want.data(), {3, 6, 5}))) << index;
    }
  }
  EXPECT_EQ(pos, indices.size());
  EXPECT_EQ(batches, 7);
  EXPECT_FALSE(loader.next().has_value());
  EXPECT_GE(loader.wait_seconds(), 0.0);
}

TEST_P(LoaderTest, DropLastAndChannelsLast) {
  const Dataset d = make_synthetic("syn", 30, 10, 3, 4, 4, 5, 4);
  std::vector<int64_t> indices(10);
  std::iota(indices.begin(), indices.end(), 0);
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.drop_last = true;
  opt.channels_last = true;
  opt.workers = GetParam();
  BatchLoader loader(d, d.test, indices, Augment{}, opt);
  EXPECT_EQ(loader.num_batches(), 2);
  LoaderOptions plain = opt;
  plain.channels_last = false;
  BatchLoader reference(d, d.test, indices, Augment{}, plain);
  int batches = 0;
  while (auto b = loader.next()) {
    ++batches;
    EXPECT_EQ(b->images.size(0), 4);
    EXPECT_TRUE(b->images.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(torch::equal(b->images, reference.next()->images));
  }
  EXPECT_EQ(batches, 2);
  EXPECT_FALSE(reference.next().has_value());
}

TEST_P(LoaderTest, WorkerErrorsReachNext) {
  Dataset d = make_synthetic("syn", 20, 0, 1, 2, 2, 2, 4);
  Split broken = d.train;
  broken.images.resize(12 * 4);  // images 12..19 are missing
  std::vector<int64_t> indices(20);
  std::iota(indices.begin(), indices.end(), 0);
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.workers = GetParam();
  BatchLoader loader(d, broken, indices, Augment{}, opt);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(loader.next().has_value());
  EXPECT_TRUE(dt::throws_error([&] { loader.next(); }, ErrorKind::kUsage, {"12"}));
  EXPECT_THROW(loader.next(), core::Error);  // stays failed
}

TEST_P(LoaderTest, StopsCleanlyMidEpoch) {
  const Dataset d = make_synthetic("syn", 400, 0, 3, 8, 8, 3, 4);
  std::vector<int64_t> indices(400);
  std::iota(indices.begin(), indices.end(), 0);
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.workers = GetParam();
  opt.prefetch = 3;
  { BatchLoader never_read(d, d.train, indices, Augment{}, opt); }
  BatchLoader loader(d, d.train, indices, Augment{}, opt);
  ASSERT_TRUE(loader.next().has_value());
  ASSERT_TRUE(loader.next().has_value());
}  // destroyed with 98 batches to go

INSTANTIATE_TEST_SUITE_P(Workers, LoaderTest, ::testing::Values(0, 1, 3),
                         [](const auto& info) { return "workers" + std::to_string(info.param); });

// Unequal batches (a rank's shares of the steps after a resume at another world size).
TEST_P(LoaderTest, GivenBatchSizesCutTheIndicesSo) {
  const Dataset d = make_synthetic("syn", 20, 0, 1, 2, 2, 2, 4);
  const auto indices = shuffled(19);
  LoaderOptions opt;
  opt.batch_size = 4;  // ignored
  opt.batch_sizes = {7, 6, 6};
  opt.workers = GetParam();
  BatchLoader loader(d, d.train, indices, Augment{}, opt);
  EXPECT_EQ(loader.num_batches(), 3);
  size_t pos = 0;
  for (int64_t want : opt.batch_sizes) {
    auto b = loader.next();
    ASSERT_TRUE(b.has_value());
    ASSERT_EQ(b->labels.size(0), want);
    for (int64_t i = 0; i < want; ++i, ++pos) {
      EXPECT_EQ(b->labels[i].item<int64_t>(), d.train.labels[static_cast<size_t>(indices[pos])]);
    }
  }
  EXPECT_FALSE(loader.next().has_value());
}

TEST(LoaderOptionsTest, RejectsBadOptions) {
  const Dataset d = make_synthetic("syn", 10, 0, 1, 2, 2, 2, 4);
  LoaderOptions opt;
  opt.batch_size = 0;
  EXPECT_TRUE(dt::throws_error([&] { BatchLoader(d, d.train, {0}, Augment{}, opt); },
                               ErrorKind::kUsage, {"batch_size"}));
  opt.batch_size = 2;
  EXPECT_TRUE(dt::throws_error(
      [&] {
        BatchLoader(d, d.train, {0, 10}, Augment{}, opt);
      },
      ErrorKind::kUsage, {"index 10"}));
  opt.batch_sizes = {1, 2};
  EXPECT_TRUE(dt::throws_error(
      [&] {
        BatchLoader(d, d.train, {0, 1}, Augment{}, opt);
      },
      ErrorKind::kUsage, {"add up to 3", "2 indices"}));
  opt.batch_sizes = {2, 0};
  EXPECT_TRUE(dt::throws_error(
      [&] {
        BatchLoader(d, d.train, {0, 1}, Augment{}, opt);
      },
      ErrorKind::kUsage, {"positive"}));
  opt.batch_sizes.clear();
  BatchLoader empty(d, d.train, {}, Augment{}, opt);
  EXPECT_EQ(empty.num_batches(), 0);
  EXPECT_FALSE(empty.next().has_value());
}

// Throughput of one worker on Fashion-MNIST-sized images with augmentation (informational;
// the bound is loose so that a busy machine does not fail it).
TEST(LoaderThroughputTest, OneWorkerKeepsUp) {
  const Dataset d = make_synthetic("syn", 12800, 0, 1, 28, 28, 10, 1);
  std::vector<int64_t> indices(12800);
  std::iota(indices.begin(), indices.end(), 0);
  LoaderOptions opt;
  opt.batch_size = 128;
  opt.train = true;
  opt.workers = 1;
  opt.channels_last = true;
  BatchLoader loader(d, d.train, indices, Augment{true, 2, true, true, {}, {}}, opt);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t images = 0;
  while (auto b = loader.next()) images += b->images.size(0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("loader: %.0f images/s on one worker\n", images / secs);
  EXPECT_EQ(images, 12800);
  EXPECT_GT(images / secs, 1000.0);
}

}  // namespace
}  // namespace ddpipe::data
