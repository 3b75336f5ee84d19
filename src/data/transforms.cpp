#include "data/transforms.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.h"
#include "core/random.h"

namespace ddpipe::data {
namespace {

// The per-sample key every random choice of an augmentation derives from.
uint64_t augment_key(uint64_t seed, int64_t epoch, int64_t index) {
  return core::splitmix64(core::splitmix64(core::splitmix64(seed) ^ static_cast<uint64_t>(epoch)) ^
                          static_cast<uint64_t>(index));
}

// Python's round() of a non-negative double: half to even.
int64_t round_half_even(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

void check_image(const ImageView& image, const ResizedCrop& opts) {
  if (image.data == nullptr || image.channels <= 0 || image.height <= 0 || image.width <= 0 ||
      opts.size <= 0) {
    core::fail_usage("resized crop: empty image (" + std::to_string(image.channels) + "x" +
                     std::to_string(image.height) + "x" + std::to_string(image.width) +
                     ") or output size " + std::to_string(opts.size));
  }
  const auto c = static_cast<size_t>(image.channels);
  if (opts.normalize && (opts.mean.size() != c || opts.std.size() != c)) {
    core::fail_usage("resized crop: normalisation needs " + std::to_string(c) +
                     " means and stds, got " + std::to_string(opts.mean.size()) + " and " +
                     std::to_string(opts.std.size()));
  }
}

// Flips each row of out[C·S·S] if `flip`, then maps [0, 255] to (x/255 − mean)/std.
void flip_and_normalize(float* out, int64_t channels, int64_t s, bool flip,
                        const ResizedCrop& opts) {
  for (int64_t c = 0; c < channels; ++c) {
    const auto ch = static_cast<size_t>(c);
    const float sd = opts.normalize && opts.std[ch] > 0.0f ? opts.std[ch] : 1.0f;
    const float scale = 1.0f / (255.0f * sd);
    const float bias = opts.normalize ? -opts.mean[ch] / sd : 0.0f;
    float* plane = out + c * s * s;
    for (int64_t y = 0; y < s; ++y) {
      float* row = plane + y * s;
      if (flip) std::reverse(row, row + s);
      for (int64_t x = 0; x < s; ++x) row[x] = row[x] * scale + bias;
    }
  }
}

// For each output column (or row) of a linear resize of `in` pixels to `n`: the first source
// pixel, the step to the second (0 at the edge) and the second's weight, as PyTorch's
// upsample_bilinear2d computes them in float (align_corners=False).
struct LinearTaps {
  std::vector<int64_t> i0, step;
  std::vector<float> w1;
};
LinearTaps linear_taps(int64_t in, int64_t n) {
  LinearTaps t;
  const float scale = static_cast<float>(in) / static_cast<float>(n);
  for (int64_t o = 0; o < n; ++o) {
    const float src = std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.0f);
    const auto i0 = static_cast<int64_t>(src);
    t.i0.push_back(i0);
    t.step.push_back(i0 < in - 1 ? 1 : 0);
    t.w1.push_back(src - static_cast<float>(i0));
  }
  return t;
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
    const uint64_t key = augment_key(seed, epoch, index);
    if (aug.random_crop && aug.crop_padding > 0) {
      pad = aug.crop_padding;
      const auto span = static_cast<uint64_t>(2 * pad + 1);
      dy = static_cast<int64_t>(core::splitmix64(key + 1) % span);
      dx = static_cast<int64_t>(core::splitmix64(key + 2) % span);
    }
    if (aug.horizontal_flip) flip = (core::splitmix64(key + 3) >> 63) != 0;
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

CropBox random_resized_crop_box(int64_t height, int64_t width, const ResizedCrop& opts,
                                const std::function<double()>& uniform) {
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_min = std::log(opts.ratio_min), log_max = std::log(opts.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (opts.scale_min + uniform() * (opts.scale_max - opts.scale_min));
    const double aspect = std::exp(log_min + uniform() * (log_max - log_min));
    const int64_t w = round_half_even(std::sqrt(target * aspect));
    const int64_t h = round_half_even(std::sqrt(target / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      // torch.randint(0, height - h + 1), then the same for the column
      const auto top = static_cast<int64_t>(uniform() * static_cast<double>(height - h + 1));
      const auto left = static_cast<int64_t>(uniform() * static_cast<double>(width - w + 1));
      return {std::min(top, height - h), std::min(left, width - w), h, w};
    }
  }
  // The central crop, clamped to the ratio range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < std::min(opts.ratio_min, opts.ratio_max)) {
    h = round_half_even(static_cast<double>(w) / std::min(opts.ratio_min, opts.ratio_max));
  } else if (in_ratio > std::max(opts.ratio_min, opts.ratio_max)) {
    w = round_half_even(static_cast<double>(h) * std::max(opts.ratio_min, opts.ratio_max));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

CropBox random_resized_crop_box(int64_t height, int64_t width, const ResizedCrop& opts,
                                uint64_t seed, int64_t epoch, int64_t sample) {
  const uint64_t key = augment_key(seed, epoch, sample);
  uint64_t draw = 16;  // transform_image uses key + 1 … key + 3
  return random_resized_crop_box(height, width, opts, [&] {
    return static_cast<double>(core::splitmix64(key + draw++) >> 11) * 0x1.0p-53;
  });
}

void resize_bilinear(const ImageView& image, const CropBox& box, int64_t out_h, int64_t out_w,
                     float* out) {
  if (box.top < 0 || box.left < 0 || box.height <= 0 || box.width <= 0 ||
      box.top + box.height > image.height || box.left + box.width > image.width) {
    core::fail_usage("resize: crop " + std::to_string(box.height) + "x" +
                     std::to_string(box.width) + " at (" + std::to_string(box.top) + ", " +
                     std::to_string(box.left) + ") is outside the " + std::to_string(image.height) +
                     "x" + std::to_string(image.width) + " image");
  }
  const LinearTaps ys = linear_taps(box.height, out_h), xs = linear_taps(box.width, out_w);
  for (int64_t c = 0; c < image.channels; ++c) {
    const uint8_t* plane = image.data + c * image.height * image.width;
    for (int64_t y = 0; y < out_h; ++y) {
      const auto yi = static_cast<size_t>(y);
      const uint8_t* r0 = plane + (box.top + ys.i0[yi]) * image.width + box.left;
      const uint8_t* r1 = r0 + ys.step[yi] * image.width;
      const float h1 = ys.w1[yi], h0 = 1.0f - h1;
      float* o = out + (c * out_h + y) * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        const auto xi = static_cast<size_t>(x);
        const int64_t x0 = xs.i0[xi], x1 = x0 + xs.step[xi];
        const float w1 = xs.w1[xi], w0 = 1.0f - w1;
        o[x] = h0 * (w0 * static_cast<float>(r0[x0]) + w1 * static_cast<float>(r0[x1])) +
               h1 * (w0 * static_cast<float>(r1[x0]) + w1 * static_cast<float>(r1[x1]));
      }
    }
  }
}

void random_resized_crop(const ImageView& image, const ResizedCrop& opts, uint64_t seed,
                         int64_t epoch, int64_t sample, float* out) {
  check_image(image, opts);
  const CropBox box = random_resized_crop_box(image.height, image.width, opts, seed, epoch, sample);
  resize_bilinear(image, box, opts.size, opts.size, out);
  const bool flip =
      opts.horizontal_flip && (core::splitmix64(augment_key(seed, epoch, sample) + 3) >> 63) != 0;
  flip_and_normalize(out, image.channels, opts.size, flip, opts);
}

void resize_center_crop(const ImageView& image, const ResizedCrop& opts, float* out) {
  check_image(image, opts);
  const int64_t s = opts.size;
  const int64_t r = opts.eval_resize > 0 ? opts.eval_resize : eval_side(s);
  const int64_t h = image.height, w = image.width;
  const int64_t shorter = std::min(h, w), longer = std::max(h, w);
  // torchvision: int(size * long / short), in Python floats
  const auto long_side = static_cast<int64_t>(static_cast<double>(r) * static_cast<double>(longer) /
                                              static_cast<double>(shorter));
  const int64_t rh = h <= w ? r : long_side, rw = h <= w ? long_side : r;
  if (rh < s || rw < s) {
    core::fail_usage("resize_center_crop: resized to " + std::to_string(rh) + "x" +
                     std::to_string(rw) + ", smaller than the " + std::to_string(s) +
                     " crop (eval_resize must be at least the size)");
  }
  std::vector<float> resized(static_cast<size_t>(image.channels * rh * rw));
  resize_bilinear(image, {0, 0, h, w}, rh, rw, resized.data());
  const int64_t top = round_half_even(static_cast<double>(rh - s) / 2.0);
  const int64_t left = round_half_even(static_cast<double>(rw - s) / 2.0);
  for (int64_t c = 0; c < image.channels; ++c) {
    for (int64_t y = 0; y < s; ++y) {
      const float* src = resized.data() + (c * rh + top + y) * rw + left;
      std::copy(src, src + s, out + (c * s + y) * s);
    }
  }
  flip_and_normalize(out, image.channels, s, false, opts);
}

}  // namespace ddpipe::data
