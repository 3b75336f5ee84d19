// A learnable image folder for the sharded-training tests, and what `ddpipe run` prints.
#pragma once

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fixtures.h"

namespace ddpipe::testing {

// DIR/<colour>/<n>.png|jpg: 4 classes of a base colour with ±60 of per-pixel noise, sizes from
// 96 to 223 pixels a side (noise keeps the PNGs big: the folder is about 12 MB).
inline void write_colour_folder(const std::filesystem::path& root, int per_class) {
  const std::vector<std::pair<std::string, std::array<int, 3>>> classes = {
      {"blue", {40, 60, 200}},
      {"green", {50, 190, 60}},
      {"red", {210, 50, 40}},
      {"yellow", {220, 210, 50}}};
  std::mt19937 rng(11);
  for (const auto& [name, rgb] : classes) {
    std::filesystem::create_directories(root / name);
    for (int i = 0; i < per_class; ++i) {
      const int w = 96 + static_cast<int>(rng() % 128), h = 96 + static_cast<int>(rng() % 128);
      std::vector<uint8_t> px(static_cast<size_t>(w * h * 3));
      for (size_t k = 0; k < px.size(); ++k) {
        px[k] = static_cast<uint8_t>(
            std::clamp<int>(rgb[k % 3] + static_cast<int>(rng() % 121) - 60, 0, 255));
      }
      const std::string stem = (root / name / std::to_string(i)).string();
      std::ofstream out(i % 2 ? stem + ".jpg" : stem + ".png", std::ios::binary);
      out << (i % 2 ? encode_jpeg(w, h, 3, px, 90)
                    : encode_png(static_cast<uint32_t>(w), static_cast<uint32_t>(h), 2, 8, px));
    }
  }
}

inline double test_accuracy(const std::string& output) {
  const auto at = output.find("test accuracy ");
  return at == std::string::npos ? -1.0 : std::stod(output.substr(at + 14)) / 100.0;
}

// Accuracy bands: the colours are easy; 5 epochs of ~10 steps reach them in both forms.
inline constexpr double kMinAccuracy = 0.85;
inline constexpr double kFormTolerance = 0.15;

}  // namespace ddpipe::testing
