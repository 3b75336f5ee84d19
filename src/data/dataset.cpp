#include "data/dataset.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/hash.h"

namespace ddpipe::data {
namespace {

void check_split(const Dataset& d, const Split& s, const char* which, const std::string& source) {
  const uint64_t expected =
      static_cast<uint64_t>(s.size()) * static_cast<uint64_t>(d.image_bytes());
  if (s.images.size() != expected) {
    core::fail_data(source + ": " + which + " split has " + std::to_string(s.images.size()) +
                    " image bytes, expected " + std::to_string(expected) + " for " +
                    std::to_string(s.size()) + " images of " + std::to_string(d.channels) + "x" +
                    std::to_string(d.height) + "x" + std::to_string(d.width));
  }
  const int64_t classes = static_cast<int64_t>(d.classes.size());
  for (int64_t i = 0; i < s.size(); ++i) {
    const int32_t label = s.labels[static_cast<size_t>(i)];
    if (label < 0 || label >= classes) {
      core::fail_data(source + ": label " + std::to_string(label) + " of " + which + " image " +
                      std::to_string(i) + " is out of range (" + std::to_string(classes) +
                      " classes)");
    }
  }
}

void hash_split(core::Hasher& h, const char* which, const Split& s) {
  h.update(std::string("split ") + which + " " + std::to_string(s.size()) + " " +
           std::to_string(s.images.size()) + "\n");
  h.update(s.images.data(), s.images.size());
  // Labels as little-endian int32, whatever the host byte order.
  std::string labels(s.labels.size() * 4, '\0');
  for (size_t i = 0; i < s.labels.size(); ++i) {
    const uint32_t v = static_cast<uint32_t>(s.labels[i]);
    for (int b = 0; b < 4; ++b) labels[4 * i + b] = static_cast<char>((v >> (8 * b)) & 0xff);
  }
  h.update(labels);
}

}  // namespace

void finalize(Dataset& d, const std::string& source) {
  if (d.channels <= 0 || d.height <= 0 || d.width <= 0) {
    core::fail_data(source + ": invalid image shape " + std::to_string(d.channels) + "x" +
                    std::to_string(d.height) + "x" + std::to_string(d.width));
  }
  if (d.classes.empty()) core::fail_data(source + ": no classes");
  if (d.train.size() == 0) core::fail_data(source + ": the train split is empty");
  check_split(d, d.train, "train", source);
  check_split(d, d.test, "test", source);

  // Per-channel mean and (population) std of the train split on the [0, 1] scale. Integer
  // sums are exact: 255² × 2^40 values still fit in 64 bits.
  const size_t plane = static_cast<size_t>(d.height * d.width);
  const size_t channels = static_cast<size_t>(d.channels);
  std::vector<uint64_t> sum(channels, 0), sum_sq(channels, 0);
  const uint8_t* p = d.train.images.data();
  for (int64_t i = 0; i < d.train.size(); ++i) {
    for (size_t c = 0; c < channels; ++c) {
      uint64_t s = 0, sq = 0;
      for (size_t k = 0; k < plane; ++k, ++p) {
        s += *p;
        sq += static_cast<uint64_t>(*p) * *p;
      }
      sum[c] += s;
      sum_sq[c] += sq;
    }
  }
  const double count = static_cast<double>(d.train.size()) * static_cast<double>(plane);
  d.mean.assign(channels, 0.0);
  d.std.assign(channels, 0.0);
  for (size_t c = 0; c < channels; ++c) {
    const double mean = static_cast<double>(sum[c]) / count;
    const double var = static_cast<double>(sum_sq[c]) / count - mean * mean;
    d.mean[c] = mean / 255.0;
    d.std[c] = std::sqrt(std::max(var, 0.0)) / 255.0;
  }
  d.digest = content_digest(d);
}

std::string content_digest(const Dataset& d) {
  core::Hasher h;
  std::string header = "ddpipe-dataset-v1\nshape " + std::to_string(d.channels) + " " +
                       std::to_string(d.height) + " " + std::to_string(d.width) + "\nclasses " +
                       std::to_string(d.classes.size()) + "\n";
  for (const auto& c : d.classes) header += std::to_string(c.size()) + ":" + c + "\n";
  h.update(header);
  hash_split(h, "train", d.train);
  hash_split(h, "test", d.test);
  return h.hex_digest();
}

}  // namespace ddpipe::data
