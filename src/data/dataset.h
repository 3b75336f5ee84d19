// ddpipe::data — an in-memory image classification dataset in ddpipe's one compact form.
//
// Images are uint8, channel-major per image (C×H×W), all of one shape; labels are class
// indices. mean/std are per channel on the [0,1] scale, computed from the training split.
// The digest is the SHA-256 of the canonical content (shape, class names, both splits), so
// the same data always gets the same digest whatever file format it came from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ddpipe::data {

struct Split {
  std::vector<uint8_t> images;  // size() * C * H * W bytes
  std::vector<int32_t> labels;  // one per image
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

struct Dataset {
  std::string name;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<std::string> classes;
  Split train;
  Split test;
  std::vector<double> mean;  // per channel, filled by finalize()
  std::vector<double> std;   // per channel, filled by finalize()
  std::string digest;        // filled by finalize()

  int64_t image_bytes() const { return channels * height * width; }
};

// Checks consistency (sizes, labels in range, non-empty train split) and fills mean, std and
// digest. Throws core::Error(kData) naming `source` and the problem.
void finalize(Dataset& dataset, const std::string& source);

// The canonical digest of a dataset's content (what finalize() stores in `digest`).
std::string content_digest(const Dataset& dataset);

}  // namespace ddpipe::data
