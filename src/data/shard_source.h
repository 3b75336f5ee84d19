// ddpipe::data — a rank's samples of a sharded split, streamed from its shards: the SampleSource
// that BatchLoader's workers read when data.form=sharded.
//
// Given the rank's plan for an epoch (the sample positions it trains or evaluates, in order, and
// its batch sizes: train::EpochBatches), the source fetches each shard through a
// shards::ShardCache the first time one of its samples is asked for, scans the tar once, and
// keeps only the encoded bytes (and labels) of the plan's samples of that shard until each has
// been produced as often as the plan lists it. The shard file itself is not kept open or read
// again. Shards are prefetched ahead in first-use order (data::shard_schedule), a few at a time,
// so that a small cache is not filled with shards needed much later.
//
// Memory bound: with a shuffle buffer of K samples, shards of m samples and G samples a step
// over all ranks, the bytes held are those of fewer than G + K + m samples (docs/stream-order.md,
// data::ShardSchedule), plus the samples of the loader's prefetched batches, which workers ask
// for ahead of time: about (K + m + (prefetch + 1)·G) × the mean encoded image size, whatever
// the size of the split. The shard cache on disk is bounded separately by data.cache_gb.
//
// produce() decodes (data/image.h) to the index's channels, then applies the random resized
// crop + flip for training or the resize + centre crop for evaluation (data/transforms.h), at
// the crop's size, normalised by its mean and std. An image that does not decode fails it, or
// under BadImagePolicy::kSkip is left out (SampleSource::kLeftOut: the batch is one smaller),
// recorded in SkippedImages. Thread-safe: workers call produce()
// concurrently; a shard is fetched and scanned by one of them while the others that need it
// wait.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "shards/cache.h"
#include "shards/index.h"
#include "shards/ingest.h"

namespace ddpipe::data {

// The normalisation of the sharded form: ImageNet's per-channel mean and std (in [0, 1] units)
// for RGB, their averages for grey. Not computed from the data: a sharded split is never
// decoded whole (docs/datasets.md, "Normalisation").
std::vector<float> sharded_mean(int64_t channels);
std::vector<float> sharded_std(int64_t channels);

// The images left out under BadImagePolicy::kSkip: each is warned about once (its shard, its
// key, the decoder's error), and counted every time it is left out. Thread-safe. The sources of
// a ShardedDataset share one, so that a bad image is warned about once a run, not every epoch.
class SkippedImages {
 public:
  // `what` names the shard and the sample key.
  void left_out(const std::string& what, const std::string& error);
  int64_t count() const;

 private:
  mutable std::mutex mu_;
  std::set<std::string> warned_;
  int64_t count_ = 0;
};

struct ShardSourceOptions {
  std::string split_name = "train";  // "train" or "test": the keys' prefix
  int64_t channels = 3;              // decode to this many (the index's)
  ResizedCrop crop;                  // crop.size is the output S×S
  bool train = true;                 // random resized crop + flip; else resize + centre crop
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t prefetch_shards = 2;  // shards queued for download ahead of the one being read
  // An image that does not decode: kFail throws, kSkip leaves it out and records it in
  // `skipped` (null: the source's own).
  shards::BadImagePolicy bad_images = shards::BadImagePolicy::kFail;
  std::shared_ptr<SkippedImages> skipped;
};

class ShardSource : public SampleSource {
 public:
  // `cache` must outlive the source. `plan` lists the split positions to be produced, in the
  // order they will roughly be asked for (repeats allowed: each is produced once per listing);
  // `batch_sizes` cut it into steps (only used to order the prefetch). Throws core::Error(kUsage)
  // for a position outside the split or sizes that do not add up to the plan.
  ShardSource(shards::ShardCache& cache, const shards::SplitIndex& split,
              const std::vector<int64_t>& plan, const std::vector<int64_t>& batch_sizes,
              ShardSourceOptions options);

  int64_t channels() const override { return options_.channels; }
  int64_t height() const override { return options_.crop.size; }
  int64_t width() const override { return options_.crop.size; }
  int64_t size() const override { return starts_.back(); }
  // Throws core::Error(kData) naming the shard and the sample key for a shard that lacks a
  // planned sample or its class, a bad class, a corrupt tar and (kFail) an image that does not
  // decode; kUsage for a position not in the plan or produced more often than it is listed.
  // Returns kLeftOut for an image that does not decode under kSkip.
  int64_t produce(int64_t position, int64_t index, float* out) override;
  // The images left out (shared with the other sources given the same SkippedImages).
  const SkippedImages& skipped() const { return *skipped_; }

  // Encoded bytes held now (extracted, not yet produced), and the most held at once.
  uint64_t held_bytes() const;
  uint64_t peak_held_bytes() const;
  // Shards fetched and scanned so far.
  int64_t shards_read() const;

 private:
  struct Sample {
    std::string bytes;
    int64_t label = -1;
    std::string key;  // its WebDataset key, for messages
  };
  Sample take(int64_t index);
  void read_shard(int64_t shard);
  void prefetch_after(int64_t shard);

  shards::ShardCache& cache_;
  const shards::SplitIndex& split_;
  const ShardSourceOptions options_;
  const std::shared_ptr<SkippedImages> skipped_;
  std::vector<int64_t> starts_;         // data::shard_starts of the split
  std::vector<int64_t> order_;          // shards in first-use order
  std::vector<int64_t> rank_in_order_;  // shard → its place in order_ (−1: not used)

  mutable std::mutex mu_;
  std::condition_variable read_cv_;
  std::unordered_map<int64_t, int64_t> uses_left_;  // position → times still to be produced
  std::unordered_map<int64_t, Sample> held_;        // extracted, not yet produced for good
  std::set<int64_t> reading_, read_;                // shards being read, read
  int64_t prefetched_until_ = 0;                    // order_[0, this) queued for prefetch
  uint64_t held_bytes_ = 0, peak_held_bytes_ = 0;
};

// A sharded dataset as a training rank reads it: its index and a shard cache under
// cache_dir/shards bounded by cache_bytes, and the sources of its splits' plans.
class ShardedDataset {
 public:
  struct Options {
    std::filesystem::path cache_dir;  // shards go to cache_dir/shards
    uint64_t cache_bytes = 0;         // data.cache_gb
    int64_t image_size = 224;         // features.image_size
    bool normalize = true;            // features.normalize (sharded_mean, sharded_std)
    bool horizontal_flip = true;      // features.horizontal_flip (training)
    double crop_scale_min = 0.08;     // features.crop_scale_min (training)
    // data.bad_images: an image that does not decode fails the loader or is left out.
    shards::BadImagePolicy bad_images = shards::BadImagePolicy::kFail;
  };
  // Reads datasets/<name>/<digest>/index.json (shards::read_index: its errors). `store` must
  // outlive the dataset.
  ShardedDataset(storage::Store& store, const std::string& name, const std::string& digest,
                 Options options);

  // What training needs to know of it without its samples: name, digest, classes, channels,
  // height = width = image_size, mean and std (sharded_mean/std); empty splits.
  const Dataset& header() const { return header_; }
  const shards::DatasetIndex& index() const { return index_; }
  const shards::SplitIndex& split(bool train) const { return train ? index_.train : index_.test; }
  std::vector<int64_t> shard_samples(bool train) const;
  // A source of `plan` of the train split (random resized crop + flip from seed and epoch) or
  // of the test split (resize + centre crop). Thread-safe; the source must not outlive this.
  std::unique_ptr<ShardSource> source(bool train, const std::vector<int64_t>& plan,
                                      const std::vector<int64_t>& batch_sizes, uint64_t seed,
                                      int64_t epoch);
  // Evaluation of `plan` of either split: resize + centre crop, nothing random.
  std::unique_ptr<ShardSource> evaluation_source(bool train, const std::vector<int64_t>& plan,
                                                 const std::vector<int64_t>& batch_sizes);
  // The images its sources left out so far (bad_images = kSkip), each warned about once.
  const SkippedImages& skipped() const { return *skipped_; }

 private:
  std::unique_ptr<ShardSource> make_source(bool train_split, bool augment,
                                           const std::vector<int64_t>& plan,
                                           const std::vector<int64_t>& batch_sizes, uint64_t seed,
                                           int64_t epoch);

  shards::DatasetIndex index_;
  Options options_;
  Dataset header_;
  shards::ShardCache cache_;
  std::shared_ptr<SkippedImages> skipped_ = std::make_shared<SkippedImages>();
};

// The options `config` gives: cache_dir/shards bounded by data.cache_gb, features.image_size,
// normalize, horizontal_flip, crop_scale_min and data.bad_images.
ShardedDataset::Options sharded_options(const core::Config& config);

}  // namespace ddpipe::data
