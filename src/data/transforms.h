// ddpipe::data — feature engineering: random crop with zero padding, horizontal flip,
// normalisation by the dataset's own statistics, to float C×H×W; and ImageNet's random resized
// crop and evaluation crop of images of any size.
//
// Randomness is a pure function of (seed, epoch, sample index), so a batch is the same
// whichever worker thread builds it and after a resume. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "data/dataset.h"

namespace ddpipe::data {

struct Augment {
  bool random_crop = false;
  int64_t crop_padding = 0;
  bool horizontal_flip = false;
  bool normalize = true;
  std::vector<float> mean;  // per channel
  std::vector<float> std;   // per channel
};

// Writes image `index` of `split` as floats into out[C*H*W]; `train` enables the random parts.
void transform_image(const Dataset& dataset, const Split& split, int64_t index, const Augment& aug,
                     bool train, uint64_t seed, int64_t epoch, float* out);

// ImageNet-style transforms of a decoded image of any size (the sharded, streamed form), to a
// float C×S×S: RandomResizedCrop for training, resize + center crop for evaluation, as
// torchvision does them, then optional flip (training) and normalisation (x/255 − mean)/std.

// A decoded image: `data` holds C×H×W bytes, channel planes of rows; not owned.
struct ImageView {
  const uint8_t* data = nullptr;
  int64_t channels = 0, height = 0, width = 0;
};

// A crop: rows [top, top + height), columns [left, left + width) of the image.
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox& o) const {
    return top == o.top && left == o.left && height == o.height && width == o.width;
  }
  bool operator!=(const CropBox& o) const { return !(*this == o); }
};

struct ResizedCrop {
  int64_t size = 224;                                   // S: the output is S×S
  double scale_min = 0.08, scale_max = 1.0;             // crop area over image area
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // crop width over height
  int64_t eval_resize = 0;      // evaluation: shorter side before the crop; 0 = eval_side(S)
  bool horizontal_flip = true;  // training: p = 0.5
  bool normalize = true;
  std::vector<float> mean = {0.485f, 0.456f, 0.406f};  // per channel, in [0, 1] units
  std::vector<float> std = {0.229f, 0.224f, 0.225f};
};

// torchvision's RandomResizedCrop.get_params for an image of height × width, with `uniform`
// giving the draws in [0, 1): up to 10 attempts (area uniform in scale × image area, log-aspect
// uniform in log ratio, w = round(√(area·aspect)), h = round(√(area/aspect)) half to even, as
// Python rounds; accepted when 0 < w ≤ width and 0 < h ≤ height, at a uniform position), then
// the fallback: the central crop of the image clamped to the ratio range.
CropBox random_resized_crop_box(int64_t height, int64_t width, const ResizedCrop& opts,
                                const std::function<double()>& uniform);
// The same with the draws a pure function of (seed, epoch, sample), as transform_image's.
CropBox random_resized_crop_box(int64_t height, int64_t width, const ResizedCrop& opts,
                                uint64_t seed, int64_t epoch, int64_t sample);

// `box` of `image` resized to out_h × out_w into out[C·out_h·out_w], values in [0, 255]:
// bilinear as torch.nn.functional.interpolate(mode="bilinear", align_corners=False) without
// antialiasing (torchvision resize(antialias=False) of the crop, on a float tensor).
void resize_bilinear(const ImageView& image, const CropBox& box, int64_t out_h, int64_t out_w,
                     float* out);

// Training: the random resized crop of sample `sample` to S×S, flipped with p = 0.5 when
// opts.horizontal_flip, normalised when opts.normalize (else x/255), into out[C·S·S]. Throws
// core::Error(kUsage) for an empty image or a normalisation without C means and stds.
void random_resized_crop(const ImageView& image, const ResizedCrop& opts, uint64_t seed,
                         int64_t epoch, int64_t sample, float* out);

// The shorter side evaluation resizes to before its S×S centre crop by default: ⌊S·256/224⌋
// (ImageNet's 256 for 224).
inline int64_t eval_side(int64_t size) { return size * 256 / 224; }

// Evaluation: resize the shorter side to opts.eval_resize (the longer to ⌊R·long/short⌋), crop
// the central S×S (offsets rounded half to even, as torchvision's center_crop), normalise (or
// x/255). The box in the original image's pixels is not a resize of a crop: this resizes whole.
void resize_center_crop(const ImageView& image, const ResizedCrop& opts, float* out);

}  // namespace ddpipe::data
