// ddpipe::data — the multi-threaded, prefetching batch loader (C++ DataLoader).
//
// Worker threads build batches of `indices` (in order, batch_size each, the last one possibly
// smaller unless drop_last; or batch_sizes[i] for batch i when given) into a bounded queue of
// `prefetch` batches, so memory stays bounded. next() returns batches in order and std::nullopt at
// the end. With workers = 0 the batches are built on the caller's thread. Not thread-safe: one
// consumer. The samples come from a Dataset in memory (transform_image) or from a SampleSource
// (the sharded form: data/shard_source.h).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace ddpipe::data {

struct Batch {
  torch::Tensor images;  // float [B, C, H, W] (channels-last strides when asked)
  torch::Tensor labels;  // int64 [B]
};

struct LoaderOptions {
  int64_t batch_size = 128;
  // When not empty: batch i has batch_sizes[i] images (each ≥ 1, summing to the number of
  // indices) and batch_size and drop_last are ignored. A job resumed at another world size
  // gives its ranks unequal shares of a step.
  std::vector<int64_t> batch_sizes;
  bool drop_last = false;
  bool train = false;  // random augmentation on
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t workers = 1;
  int64_t prefetch = 4;
  bool channels_last = false;
};

// Where a BatchLoader takes its samples from when they are not in memory. produce() is called
// from the loader's worker threads concurrently, each plan position once (in any order): it
// writes the transformed sample indices[position] (= `index`) as floats into out[C·H·W] and
// returns its label, or kLeftOut for a sample it leaves out (a bad image under
// data.bad_images=skip): the batch is then built without it, one smaller; a batch whose every
// sample is left out is a core::Error(kData) naming the batch. Errors are thrown (and rethrown
// by BatchLoader::next()).
class SampleSource {
 public:
  static constexpr int64_t kLeftOut = -1;
  virtual ~SampleSource() = default;
  virtual int64_t channels() const = 0;
  virtual int64_t height() const = 0;
  virtual int64_t width() const = 0;
  virtual int64_t size() const = 0;  // samples in the split (indices are below it)
  virtual int64_t produce(int64_t position, int64_t index, float* out) = 0;
};

class BatchLoader {
 public:
  // `dataset` must outlive the loader.
  BatchLoader(const Dataset& dataset, const Split& split, std::vector<int64_t> indices,
              Augment augment, LoaderOptions options);
  // From `source` (which must outlive the loader, and applies its own transform): the same
  // batching, threads and prefetch; options.train, seed and epoch are the source's business.
  BatchLoader(SampleSource& source, std::vector<int64_t> indices, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  std::optional<Batch> next();
  int64_t num_batches() const;
  // Seconds next() spent waiting for a batch that was not ready yet.
  double wait_seconds() const;

 private:
  void start();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddpipe::data
