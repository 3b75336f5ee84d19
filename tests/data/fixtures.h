// Test fixtures for ddpipe::data: real-format files (IDX, CIFAR-10 batches and archive, PNG,
// JPEG) written from known content, so the readers can be checked byte for byte.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"

namespace ddpipe::testing {

void write_bytes(const std::filesystem::path& path, const std::string& bytes);
std::string gzip(const std::string& bytes);

// IDX files: ubyte images [n, rows, cols] and ubyte labels [n].
std::string idx_images(int64_t n, int64_t rows, int64_t cols, const std::vector<uint8_t>& pixels);
std::string idx_labels(const std::vector<uint8_t>& labels);

// A 1-channel dataset with deterministic content (train, test sizes; rows x cols).
data::Dataset pattern_dataset(int64_t train, int64_t test, int64_t channels, int64_t rows,
                              int64_t cols, int64_t classes, uint32_t seed);

// Writes {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] for a 1-channel dataset.
void write_idx_dataset(const std::filesystem::path& dir, const data::Dataset& d, bool gz);

// CIFAR-10 binary records (label byte + 3072 bytes) of a 3x32x32 dataset slice.
std::string cifar_records(const data::Split& split, int64_t begin, int64_t end);
// Writes data_batch_1..5.bin, test_batch.bin (and batches.meta.txt when classes are given)
// for a 3x32x32 dataset whose train split divides into 5 batches.
void write_cifar_dir(const std::filesystem::path& dir, const data::Dataset& d, bool meta);

// A .tar.gz (libarchive) of (entry name, content) pairs, written as given (even "../x").
void write_tar_gz(const std::filesystem::path& archive,
                  const std::vector<std::pair<std::string, std::string>>& entries);
// The entries of the real cifar-10-binary.tar.gz for `d`.
std::vector<std::pair<std::string, std::string>> cifar_archive_entries(const data::Dataset& d);

// PNG with libpng's write API: `rows` are the raw PNG rows (16-bit samples big-endian).
std::string encode_png(uint32_t width, uint32_t height, int color_type, int bit_depth,
                       const std::vector<uint8_t>& rows,
                       const std::vector<uint8_t>& palette_rgb = {},
                       const std::vector<uint8_t>& trns = {}, bool interlace = false);
// Baseline JPEG (libjpeg) of interleaved 1- or 3-channel pixels.
std::string encode_jpeg(int width, int height, int channels, const std::vector<uint8_t>& pixels,
                        int quality = 100);

// Runs `f` and checks that it throws core::Error of `kind` whose message contains every part.
template <class F>
::testing::AssertionResult throws_error(F&& f, core::ErrorKind kind,
                                        std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const core::Error& e) {
    if (e.kind() != kind) {
      return ::testing::AssertionFailure() << "kind " << core::kind_name(e.kind()) << ", expected "
                                           << core::kind_name(kind) << ": " << e.what();
    }
    for (const auto& p : parts) {
      if (std::string(e.what()).find(p) == std::string::npos) {
        return ::testing::AssertionFailure() << "message lacks '" << p << "': " << e.what();
      }
    }
    return ::testing::AssertionSuccess() << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "not a core::Error: " << e.what();
  }
  return ::testing::AssertionFailure() << "nothing was thrown";
}

}  // namespace ddpipe::testing
