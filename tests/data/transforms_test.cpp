#include "data/transforms.h"

#include <gtest/gtest.h>

#include <cmath>

#include "fixtures.h"

namespace ddpipe::data {
namespace {

namespace dt = ddpipe::testing;
using core::ErrorKind;

Dataset small_dataset() {
  Dataset d = dt::pattern_dataset(20, 5, 3, 6, 5, 4, 21);
  finalize(d, "pattern");
  return d;
}

std::vector<float> run(const Dataset& d, const Split& s, int64_t i, const Augment& a, bool train,
                       uint64_t seed, int64_t epoch) {
  std::vector<float> out(static_cast<size_t>(d.image_bytes()));
  transform_image(d, s, i, a, train, seed, epoch, out.data());
  return out;
}

// Reference: pad with zeros, crop at (dy, dx), optionally flip, then normalise.
std::vector<float> reference(const Dataset& d, const Split& s, int64_t i, const Augment& a,
                             int64_t dy, int64_t dx, bool flip) {
  const int64_t C = d.channels, H = d.height, W = d.width, p = a.crop_padding;
  std::vector<float> out(static_cast<size_t>(C * H * W));
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        const int64_t cx = flip ? W - 1 - x : x;
        const int64_t sy = y + dy - p, sx = cx + dx - p;
        const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
        const float v =
            inside ? s.images[static_cast<size_t>(i * C * H * W + c * H * W + sy * W + sx)] : 0.0f;
        out[static_cast<size_t>(c * H * W + y * W + x)] = (v / 255.0f - a.mean[c]) / a.std[c];
      }
    }
  }
  return out;
}

bool near(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (std::fabs(a[k] - b[k]) > 1e-5f) return false;
  }
  return true;
}

TEST(TransformsTest, NormalisesWithoutAugmentationOnTest) {
  const Dataset d = small_dataset();
  Augment a{true, 2, true, true, {0.5f, 0.25f, 0.1f}, {0.5f, 0.2f, 2.0f}};
  for (int64_t i = 0; i < d.test.size(); ++i) {
    EXPECT_TRUE(near(run(d, d.test, i, a, false, 1, 0),
                     reference(d, d.test, i, a, a.crop_padding, a.crop_padding, false)));
  }
  // Empty mean/std: the dataset's own statistics.
  Augment own;
  const auto x = run(d, d.train, 3, own, false, 0, 0);
  const size_t k = 6 * 5 + 7;  // channel 1
  EXPECT_NEAR(x[k], (d.train.images[3 * 90 + k] / 255.0 - d.mean[1]) / d.std[1], 1e-5);
  Augment raw;
  raw.normalize = false;
  EXPECT_NEAR(run(d, d.train, 3, raw, false, 0, 0)[k], d.train.images[3 * 90 + k] / 255.0, 1e-6);
}

TEST(TransformsTest, CropAndFlipArePureFunctionsOfSeedEpochIndex) {
  const Dataset d = small_dataset();
  Augment a{true, 2, true, true, {0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
  int differs_by_epoch = 0, flips = 0, shifted = 0;
  for (int64_t i = 0; i < d.train.size(); ++i) {
    const auto e0 = run(d, d.train, i, a, true, 9, 0);
    EXPECT_EQ(e0, run(d, d.train, i, a, true, 9, 0));
    if (e0 != run(d, d.train, i, a, true, 9, 1)) ++differs_by_epoch;
    // The result is one of the (2p+1)² × 2 candidate crops.
    bool found = false;
    for (int64_t dy = 0; dy <= 4 && !found; ++dy) {
      for (int64_t dx = 0; dx <= 4 && !found; ++dx) {
        for (bool flip : {false, true}) {
          if (!found && near(e0, reference(d, d.train, i, a, dy, dx, flip))) {
            found = true;
            flips += flip;
            shifted += dy != 2 || dx != 2;
          }
        }
      }
    }
    EXPECT_TRUE(found) << "image " << i;
  }
  EXPECT_GE(differs_by_epoch, 15);
  EXPECT_GT(flips, 2);
  EXPECT_LT(flips, 18);
  EXPECT_GT(shifted, 10);
  EXPECT_NE(run(d, d.train, 0, a, true, 9, 0), run(d, d.train, 0, a, true, 10, 0));
}

TEST(TransformsTest, RejectsBadArguments) {
  const Dataset d = small_dataset();
  std::vector<float> out(90);
  Augment a;
  a.mean = {0.5f};
  a.std = {0.5f};
  EXPECT_TRUE(dt::throws_error([&] { transform_image(d, d.train, 0, a, false, 0, 0, out.data()); },
                               ErrorKind::kUsage, {"3 means"}));
  EXPECT_TRUE(
      dt::throws_error([&] { transform_image(d, d.train, 20, Augment{}, false, 0, 0, out.data()); },
                       ErrorKind::kUsage, {"out of range"}));
}

}  // namespace
}  // namespace ddpipe::data
