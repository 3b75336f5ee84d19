#include "data/dataset.h"

#include <gtest/gtest.h>

#include <cmath>

#include "fixtures.h"

namespace ddpipe::data {
namespace {

namespace dt = ddpipe::testing;
using core::ErrorKind;

Dataset tiny() {
  Dataset d;
  d.name = "tiny";
  d.channels = 2;
  d.height = 1;
  d.width = 2;
  d.classes = {"a", "b"};
  // Two train images: channel 0 = {0, 255}, {255, 255}; channel 1 = {51, 51} each.
  d.train.images = {0, 255, 51, 51, 255, 255, 51, 51};
  d.train.labels = {0, 1};
  d.test.images = {1, 2, 3, 4};
  d.test.labels = {1};
  return d;
}

TEST(DatasetTest, FinalizeComputesPerChannelStatistics) {
  Dataset d = tiny();
  finalize(d, "tiny");
  ASSERT_EQ(d.mean.size(), 2u);
  EXPECT_NEAR(d.mean[0], 0.75, 1e-12);
  EXPECT_NEAR(d.std[0], std::sqrt(0.75 - 0.75 * 0.75), 1e-12);
  EXPECT_NEAR(d.mean[1], 0.2, 1e-12);
  EXPECT_NEAR(d.std[1], 0.0, 1e-12);
  EXPECT_EQ(d.digest.size(), 64u);
  EXPECT_EQ(d.digest, content_digest(d));
}

TEST(DatasetTest, DigestDependsOnContentNotName) {
  Dataset a = tiny(), b = tiny();
  b.name = "other";
  finalize(a, "a");
  finalize(b, "b");
  EXPECT_EQ(a.digest, b.digest);

  auto changed = [&](auto edit) {
    Dataset c = tiny();
    edit(c);
    return content_digest(c) != a.digest;
  };
  EXPECT_TRUE(changed([](Dataset& c) { c.train.images[3] ^= 1; }));
  EXPECT_TRUE(changed([](Dataset& c) { c.test.labels[0] = 0; }));
  EXPECT_TRUE(changed([](Dataset& c) { c.classes[1] = "B"; }));
  EXPECT_TRUE(changed([](Dataset& c) { c.classes = {"ab", ""}; }));
  EXPECT_TRUE(changed([](Dataset& c) { std::swap(c.height, c.width); }));
  // Moving an image from train to test is a different dataset.
  EXPECT_TRUE(changed([](Dataset& c) {
    c.test.images.insert(c.test.images.begin(), c.train.images.end() - 4, c.train.images.end());
    c.test.labels.insert(c.test.labels.begin(), c.train.labels.back());
    c.train.images.resize(4);
    c.train.labels.resize(1);
  }));
}

TEST(DatasetTest, FinalizeRejectsInconsistentData) {
  Dataset d = tiny();
  d.train.labels[1] = 2;
  EXPECT_TRUE(dt::throws_error([&] { finalize(d, "src.bin"); }, ErrorKind::kData,
                               {"src.bin", "label 2", "out of range"}));
  d = tiny();
  d.test.labels[0] = -1;
  EXPECT_TRUE(
      dt::throws_error([&] { finalize(d, "src.bin"); }, ErrorKind::kData, {"src.bin", "-1"}));
  d = tiny();
  d.train.images.pop_back();
  EXPECT_TRUE(dt::throws_error([&] { finalize(d, "src.bin"); }, ErrorKind::kData,
                               {"src.bin", "image bytes"}));
  d = tiny();
  d.train = Split();
  EXPECT_TRUE(dt::throws_error([&] { finalize(d, "src.bin"); }, ErrorKind::kData, {"empty"}));
  d = tiny();
  d.classes.clear();
  EXPECT_TRUE(dt::throws_error([&] { finalize(d, "src.bin"); }, ErrorKind::kData, {"classes"}));
}

}  // namespace
}  // namespace ddpipe::data
