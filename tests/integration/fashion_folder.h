// Real images for the accuracy tests of the sharded form: a class-balanced subset of Debian's
// Fashion-MNIST (package dataset-fashion-mnist, a main dependency) written as an image folder of
// 28×28 grey PNG files, DIR/train/<k>-<class>/<n>.png and DIR/test/<k>-<class>/<n>.png (the
// k- prefix keeps the sorted folder names in Fashion-MNIST's label order).
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fixtures.h"

namespace ddpipe::testing {

inline const std::filesystem::path kFashionDir = "/usr/share/datasets/fashion-mnist";
inline const char* kFashionMissing =
    "needs Debian's Fashion-MNIST in /usr/share/datasets/fashion-mnist, a main dependency: "
    "apt-get install dataset-fashion-mnist (scripts/install-deps.sh installs it)";

// The bytes of a gzip file, through gzip(1). Throws std::runtime_error when it cannot be read.
inline std::string gunzip_file(const std::filesystem::path& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(
      popen(("gzip -dc '" + path.string() + "'").c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("cannot run gzip -dc " + path.string());
  std::string out;
  char buf[1 << 16];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe.get())) > 0;) out.append(buf, n);
  if (out.empty()) throw std::runtime_error("cannot read " + path.string());
  return out;
}

// Writes the first `per_class` images of each class of one Fashion-MNIST split (`prefix` "train"
// or "t10k") into root/<k>-<class>/<n>.png.
inline void write_fashion_split(const std::filesystem::path& root, const std::string& prefix,
                                int per_class) {
  static const std::vector<std::string> kClasses = {"tshirt", "trouser", "pullover", "dress",
                                                    "coat",   "sandal",  "shirt",    "sneaker",
                                                    "bag",    "boot"};
  const std::string images = gunzip_file(kFashionDir / (prefix + "-images-idx3-ubyte.gz"));
  const std::string labels = gunzip_file(kFashionDir / (prefix + "-labels-idx1-ubyte.gz"));
  constexpr size_t kPixels = 28 * 28, kImagesHeader = 16, kLabelsHeader = 8;
  std::vector<int> written(kClasses.size(), 0);
  for (size_t i = 0; kLabelsHeader + i < labels.size(); ++i) {
    const auto label = static_cast<size_t>(static_cast<uint8_t>(labels[kLabelsHeader + i]));
    if (label >= kClasses.size() || written[label] >= per_class) continue;
    const char* px = images.data() + kImagesHeader + i * kPixels;
    const std::string folder = std::to_string(label) + "-" + kClasses[label];
    write_bytes(root / folder / (std::to_string(written[label]++) + ".png"),
                encode_png(28, 28, 0 /* grey */, 8, std::vector<uint8_t>(px, px + kPixels)));
  }
  for (size_t c = 0; c < written.size(); ++c) {
    if (written[c] < per_class) throw std::runtime_error("Fashion-MNIST: too few images");
  }
}

// root/train/… and root/test/… with `train` and `test` images a class. False when the package
// is missing (the caller fails with kFashionMissing).
inline bool write_fashion_folder(const std::filesystem::path& root, int train, int test) {
  if (!std::filesystem::exists(kFashionDir / "train-images-idx3-ubyte.gz")) return false;
  write_fashion_split(root / "train", "train", train);
  write_fashion_split(root / "test", "t10k", test);
  return true;
}

}  // namespace ddpipe::testing
