// libFuzzer target: dataset files as ingest reads them from the user's disk, through
// data::load_idx (MNIST / Fashion-MNIST IDX, plain or gzipped), data::load_cifar10 (the binary
// batches, batches.meta.txt, and the cifar-10-binary.tar.gz archive, extracted by libarchive).
// The readers take files, so each run writes the input's files into a fresh temporary folder.
// Built with clang under ASan + UBSan; see cmake/DdpipeFuzz.cmake.
//
// Input: one mode byte, then the files separated by kSeparator:
//   mode % 3 == 0  IDX: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images…,
//                  t10k-labels… (each written gzipped as <name>.gz when mode & 4)
//   mode % 3 == 1  CIFAR-10 folder: batches.meta.txt, data_batch_1..5.bin, test_batch.bin
//   mode % 3 == 2  CIFAR-10 archive: the rest of the input is cifar-10-binary.tar.gz
// A file missing from the input is not written. Expected refusals are core::Error; anything else
// escaping is a finding.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "data/formats.h"

using namespace ddpipe;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSeparator = "\n--file--\n";

std::vector<std::string_view> split(std::string_view in) {
  std::vector<std::string_view> parts;
  for (size_t at = 0;;) {
    const size_t end = in.find(kSeparator, at);
    parts.push_back(in.substr(at, end == std::string_view::npos ? end : end - at));
    if (end == std::string_view::npos) return parts;
    at = end + kSeparator.size();
  }
}

void write(const fs::path& path, std::string_view bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen((path.string() + ".gz").c_str(), "wb1");
    if (!bytes.empty()) gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void load(uint8_t mode, std::string_view rest, const fs::path& dir) {
  if (mode % 3 == 2) {
    write(dir / "cifar-10-binary.tar.gz", rest, false);
    data::load_cifar10(dir / "cifar-10-binary.tar.gz", "cifar10");
    return;
  }
  static const char* const kIdx[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  static const char* const kCifar[] = {"batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin",
                                       "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
                                       "test_batch.bin"};
  const std::vector<std::string_view> parts = split(rest);
  const bool idx = mode % 3 == 0;
  const size_t n = idx ? std::size(kIdx) : std::size(kCifar);
  for (size_t i = 0; i < parts.size() && i < n; ++i) {
    write(dir / (idx ? kIdx[i] : kCifar[i]), parts[i], idx && (mode & 4));
  }
  if (idx) {
    data::load_idx(dir, mode & 8 ? "fashion-mnist" : "mnist");
  } else {
    data::load_cifar10(dir, "cifar10");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const core::TempDir dir("ddpipe-formats-fuzz");
  try {
    load(data[0], std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), dir.path());
  } catch (const core::Error&) {
  }
  return 0;
}
