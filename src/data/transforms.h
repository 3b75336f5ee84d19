// ddpipe::data — feature engineering: random crop with zero padding, horizontal flip,
// normalisation by the dataset's own statistics, to float C×H×W.
//
// Randomness is a pure function of (seed, epoch, sample index), so a batch is the same
// whichever worker thread builds it and after a resume. Thread-safe (no shared state).
#pragma once

#include <cstdint>
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

}  // namespace ddpipe::data
