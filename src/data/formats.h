// ddpipe::data — readers for the dataset formats ddpipe ingests. Each returns a finalized
// Dataset or throws core::Error(kData) naming the file and what is wrong with it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/config.h"
#include "data/dataset.h"

namespace ddpipe::data {

// MNIST / Fashion-MNIST IDX: {train,t10k}-{images-idx3,labels-idx1}-ubyte, plain or .gz, in
// `dir`. Class names: Fashion-MNIST's when name contains "fashion", else "0".."9".
Dataset load_idx(const std::filesystem::path& dir, const std::string& name);

// CIFAR-10 binary: a folder with data_batch_1..5.bin, test_batch.bin (batches.meta.txt for the
// class names), a folder containing cifar-10-batches-bin/, or the cifar-10-binary.tar.gz archive.
Dataset load_cifar10(const std::filesystem::path& path, const std::string& name);

// Image folder: root/<class>/*.png|jpg|jpeg, or root/train/<class>/… and root/test/<class>/….
// Images are converted to `channels` and resized (bilinear) to height×width. Without train/
// and test/ subfolders, a seeded `test_fraction` of each class becomes the test split.
Dataset load_image_folder(const std::filesystem::path& root, const std::string& name,
                          int64_t channels, int64_t height, int64_t width, double test_fraction,
                          uint64_t seed);

// Random uint8 images with random labels (benchmarks only), reproducible from `seed`.
Dataset make_synthetic(const std::string& name, int64_t train_size, int64_t test_size,
                       int64_t channels, int64_t height, int64_t width, int64_t classes,
                       uint64_t seed);

// Reads the dataset that `config` describes (downloading CIFAR-10 first when data.download is
// set and the files are missing).
Dataset load_source(const core::DataConfig& config, uint64_t seed);

}  // namespace ddpipe::data
