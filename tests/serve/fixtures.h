// Helpers for the serve tests: tiny published models, encoded test images, request bodies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base64.h"
#include "storage/store.h"

namespace ddpipe::serve::fixtures {

struct ModelShape {
  std::string arch = "resnet-mini";
  int64_t channels = 1, height = 28, width = 28, classes = 10;
  int64_t width_param = 8;  // resnet-mini base width
  bool channels_last = true;
};

// Publishes an untrained network (weights from `seed`) as a new version of `name`, with the
// manifest the trainer writes, and moves model_latest to it. Returns the version.
std::string publish_model(storage::Store& store, const std::string& name, uint64_t seed,
                          const ModelShape& shape = {});

std::vector<uint8_t> random_pixels(size_t n, uint64_t seed);
// channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (8-bit, interleaved).
std::string encode_png(int64_t width, int64_t height, int64_t channels,
                       const std::vector<uint8_t>& pixels);
// channels: 1 or 3.
std::string encode_jpeg(int64_t width, int64_t height, int64_t channels,
                        const std::vector<uint8_t>& pixels, int quality = 90);

// A multipart/form-data body with one file field; use with
// "Content-Type: multipart/form-data; boundary=" + kBoundary.
inline const std::string kBoundary = "ddpipe-test-7c1f";
std::string multipart(const std::string& field, const std::string& filename,
                      const std::string& bytes);

// Standard base64 with padding: core's, the encoding the server decodes.
using core::base64_encode;

}  // namespace ddpipe::serve::fixtures
