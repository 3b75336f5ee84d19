#include "data/transforms.h"

#include <algorithm>
#include <array>

#include "core/error.h"

namespace ddpipe::data {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

void transform_image(const Dataset& dataset, const Split& split, int64_t index, const Augment& aug,
                     bool train, uint64_t seed, int64_t epoch, float* out) {
  const int64_t C = dataset.channels, H = dataset.height, W = dataset.width;
  const int64_t bytes = dataset.image_bytes();
  if (index < 0 || static_cast<uint64_t>((index + 1) * bytes) > split.images.size()) {
    core::fail_usage(
        "transform_image: image " + std::to_string(index) + " is out of range (" +
        std::to_string(split.images.size() / static_cast<uint64_t>(std::max<int64_t>(bytes, 1))) +
        " images)");
  }
  // Normalisation by the augment's statistics, else the dataset's own.
  const bool own = aug.mean.empty() && aug.std.empty();
  const size_t n_mean = own ? dataset.mean.size() : aug.mean.size();
  const size_t n_std = own ? dataset.std.size() : aug.std.size();
  if (aug.normalize && (n_mean != static_cast<size_t>(C) || n_std != static_cast<size_t>(C))) {
    core::fail_usage("transform_image: normalisation needs " + std::to_string(C) +
                     " means and stds, got " + std::to_string(n_mean) + " and " +
                     std::to_string(n_std));
  }
  auto mean_of = [&](size_t c) { return own ? static_cast<float>(dataset.mean[c]) : aug.mean[c]; };
  auto std_of = [&](size_t c) { return own ? static_cast<float>(dataset.std[c]) : aug.std[c]; };

  // The random choices are a pure function of (seed, epoch, index).
  int64_t pad = 0, dy = 0, dx = 0;
  bool flip = false;
  if (train) {
    const uint64_t key = splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch)) ^
                                    static_cast<uint64_t>(index));
    if (aug.random_crop && aug.crop_padding > 0) {
      pad = aug.crop_padding;
      const auto span = static_cast<uint64_t>(2 * pad + 1);
      dy = static_cast<int64_t>(splitmix64(key + 1) % span);
      dx = static_cast<int64_t>(splitmix64(key + 2) % span);
    }
    if (aug.horizontal_flip) flip = (splitmix64(key + 3) >> 63) != 0;
  }

  const uint8_t* src = split.images.data() + index * bytes;
  std::array<float, 256> lut;
  for (int64_t c = 0; c < C; ++c) {
    const auto ch = static_cast<size_t>(c);
    const float s = aug.normalize && std_of(ch) > 0.0f ? std_of(ch) : 1.0f;  // constant channel
    const float scale = 1.0f / (255.0f * s);
    const float bias = aug.normalize ? -mean_of(ch) / s : 0.0f;
    for (int v = 0; v < 256; ++v) {
      lut[static_cast<size_t>(v)] = static_cast<float>(v) * scale + bias;
    }
    const uint8_t* plane = src + c * H * W;
    float* o = out + c * H * W;
    // out(y, x) = padded(y + dy, flip ? W-1-x+dx : x+dx), zero outside the image.
    for (int64_t y = 0; y < H; ++y, o += W) {
      const int64_t sy = y + dy - pad;
      if (sy < 0 || sy >= H) {
        std::fill(o, o + W, lut[0]);
        continue;
      }
      const uint8_t* row = plane + sy * W;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = (flip ? W - 1 - x : x) + dx - pad;
        o[x] = sx >= 0 && sx < W ? lut[row[sx]] : lut[0];
      }
    }
  }
}

}  // namespace ddpipe::data
