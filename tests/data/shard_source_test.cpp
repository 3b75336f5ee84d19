// data/shard_source.h: a rank's samples streamed from real shards (a real image folder ingested
// into a real LocalStore), through BatchLoader's worker threads and a real ShardCache.
#include "data/shard_source.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/hash.h"
#include "data/image.h"
#include "data/stream_order.h"
#include "fixtures.h"
#include "shards/ingest.h"
#include "shards/tar.h"
#include "shards_fixtures.h"
#include "test_util.h"

namespace ddpipe::data {
namespace {

namespace fs = std::filesystem;
namespace dt = ddpipe::testing;
using core::ErrorKind;
using dt::throws_error;

// A folder of 3 classes × 50 noise images of varied sizes, ingested in shards of 1 MiB.
struct Ingested {
  dt::TempDir dir;
  dt::CountingStore store{dir / "store"};
  shards::DatasetIndex index;

  Ingested() {
    dt::write_image_folder(dir / "folder", {"a", "b", "c"}, 50, 7);
    shards::IngestOptions o;
    o.root = dir / "folder";
    o.name = "pets";
    o.shard_mb = 1;
    o.workers = 2;
    o.show_progress = false;
    const auto report = shards::ingest_image_folder(o, store);
    index = shards::read_index(store, "pets", report.digest);
  }
};

std::vector<int64_t> counts(const shards::SplitIndex& split) {
  std::vector<int64_t> c;
  for (const auto& s : split.shards) c.push_back(s.samples);
  return c;
}

// The label of every position of a split, as stored.
std::vector<int64_t> stored_labels(Ingested& d, const shards::SplitIndex& split) {
  std::vector<int64_t> labels;
  for (const auto& [key, sample] : dt::read_split(d.store, split)) labels.push_back(sample.label);
  return labels;
}

LoaderOptions loader_options(const std::vector<int64_t>& sizes, int64_t workers) {
  LoaderOptions lo;
  lo.batch_sizes = sizes;
  lo.workers = workers;
  lo.prefetch = 2;
  return lo;
}

ShardSourceOptions source_options(bool train) {
  ShardSourceOptions o;
  o.crop.size = 12;
  o.train = train;
  o.seed = 3;
  o.epoch = 1;
  return o;
}

// Batches of 5 over `plan`, the last one smaller.
std::vector<int64_t> batches_of_5(size_t n) {
  std::vector<int64_t> sizes(n / 5, 5);
  if (n % 5) sizes.push_back(static_cast<int64_t>(n % 5));
  return sizes;
}

// Runs a loader over `source` and returns the labels in order.
std::vector<int64_t> labels_delivered(SampleSource& source, const std::vector<int64_t>& plan,
                                      int64_t workers) {
  BatchLoader loader(source, plan, loader_options(batches_of_5(plan.size()), workers));
  std::vector<int64_t> labels;
  while (auto b = loader.next()) {
    EXPECT_EQ(b->images.sizes(), (std::vector<int64_t>{b->labels.size(0), 3, 12, 12}));
    EXPECT_TRUE(torch::isfinite(b->images).all().item<bool>());
    for (int64_t i = 0; i < b->labels.size(0); ++i) labels.push_back(b->labels[i].item<int64_t>());
  }
  return labels;
}

TEST(ShardSource, DeliversEveryPlannedSampleOnceWithItsLabel) {
  Ingested d;
  const auto& train = d.index.train;
  ASSERT_GE(train.shards.size(), 3u) << "the test needs several shards";
  const std::vector<int64_t> labels = stored_labels(d, train);
  // A sharded epoch's order at world size 4 (padded), rank 1's share: positions 1, 5, 9, …
  const auto order = pad_to_world(stream_order(counts(train), 4, 3, 1), 4);
  std::vector<int64_t> plan;
  for (size_t i = 1; i < order.size(); i += 4) plan.push_back(order[i]);
  plan.push_back(plan.front());  // a repeat, as padding makes them
  for (int64_t workers : {0, 3}) {
    shards::ShardCache cache(d.store, d.dir / "cache", 1ull << 30);
    ShardSource source(cache, train, plan, batches_of_5(plan.size()), source_options(true));
    const auto got = labels_delivered(source, plan, workers);
    ASSERT_EQ(got.size(), plan.size());
    for (size_t i = 0; i < plan.size(); ++i) {
      EXPECT_EQ(got[i], labels[static_cast<size_t>(plan[i])]) << "position " << plan[i];
    }
    EXPECT_EQ(source.held_bytes(), 0u) << "nothing kept after its last use";
    EXPECT_GT(source.peak_held_bytes(), 0u);
  }
}

TEST(ShardSource, EvaluationIsTheCentreCropOfTheDecodedImage) {
  Ingested d;
  const auto& test = d.index.test;
  ASSERT_GT(test.samples, 0);
  const auto samples = dt::read_split(d.store, test);
  const std::vector<int64_t> plan = {test.samples - 1};
  shards::ShardCache cache(d.store, d.dir / "cache", 1ull << 30);
  ShardSourceOptions o = source_options(false);
  o.split_name = "test";
  ShardSource source(cache, test, plan, {1}, o);
  std::vector<float> got(3 * 12 * 12), want(got.size());
  const auto& stored = samples.rbegin()->second;
  EXPECT_EQ(source.produce(0, plan[0], got.data()), stored.label);
  const Image image = decode_image(stored.bytes, "expected");
  const auto chw = to_chw(image, 3, image.height, image.width);
  resize_center_crop({chw.data(), 3, image.height, image.width}, o.crop, want.data());
  EXPECT_EQ(got, want);
}

TEST(ShardSource, ATinyCacheEvictsAndStillDeliversEverything) {
  Ingested d;
  const auto& train = d.index.train;
  const std::vector<int64_t> labels = stored_labels(d, train);
  const auto plan = stream_order(counts(train), 6, 9, 0);
  shards::ShardCache cache(d.store, d.dir / "cache", 1);  // below one shard: evicts all others
  ShardSource source(cache, train, plan, batches_of_5(plan.size()), source_options(true));
  const auto got = labels_delivered(source, plan, 2);
  ASSERT_EQ(got.size(), plan.size());
  for (size_t i = 0; i < plan.size(); ++i) EXPECT_EQ(got[i], labels[static_cast<size_t>(plan[i])]);
  EXPECT_EQ(source.shards_read(), static_cast<int64_t>(train.shards.size())) << "each read once";
  EXPECT_LE(cache.cached_bytes(), train.shards.front().bytes * 2 + (1u << 20))
      << "the folder holds about one shard";
}

// A one-sample shard with these members, put into the store's pool.
shards::SplitIndex put_shard(dt::CountingStore& store,
                             const std::vector<std::pair<std::string, std::string>>& members) {
  std::string tar;
  shards::TarWriter w(tar);
  for (const auto& [name, bytes] : members) w.add(name, bytes);
  w.finish();
  shards::ShardRef r;
  r.sha256 = core::sha256_hex(tar);
  r.key = shards::shard_key("pets", r.sha256);
  r.bytes = tar.size();
  r.samples = 1;
  r.first_key = "train-0000000000";
  store.put(r.key, tar);
  return {1, {r}};
}

TEST(ShardSource, ReportsTheShardAndTheSampleOfWhatIsBroken) {
  dt::TempDir dir;
  dt::CountingStore store(dir / "store");
  shards::ShardCache cache(store, dir / "cache", 1ull << 30);
  auto produce = [&](const shards::SplitIndex& split) {
    ShardSource source(cache, split, {0}, {1}, source_options(true));
    std::vector<float> out(3 * 12 * 12);
    source.produce(0, 0, out.data());
  };
  const auto bad_image =
      put_shard(store, {{"train-0000000000.png", "not an image"}, {"train-0000000000.cls", "1"}});
  EXPECT_TRUE(throws_error([&] { produce(bad_image); }, ErrorKind::kData,
                           {bad_image.shards[0].key, "train-0000000000"}));
  const auto no_class = put_shard(store, {{"train-0000000000.png", "x"}});
  EXPECT_TRUE(throws_error([&] { produce(no_class); }, ErrorKind::kData,
                           {no_class.shards[0].key, "train-0000000000", "class"}));
  // Not a tar (a SHA-256 that matches: the file is what the index says, and still broken).
  shards::SplitIndex corrupt = bad_image;
  const std::string junk(700, 'j');
  corrupt.shards[0].sha256 = core::sha256_hex(junk);
  corrupt.shards[0].key = shards::shard_key("pets", corrupt.shards[0].sha256);
  corrupt.shards[0].bytes = junk.size();
  store.put(corrupt.shards[0].key, junk);
  EXPECT_TRUE(throws_error([&] { produce(corrupt); }, ErrorKind::kData, {corrupt.shards[0].key}));
}

TEST(ShardSource, ErrorsReachTheLoadersConsumer) {
  dt::TempDir dir;
  dt::CountingStore store(dir / "store");
  shards::ShardCache cache(store, dir / "cache", 1ull << 30);
  const auto bad = put_shard(
      store, {{"train-0000000000.jpg", "\xff\xd8\xff garbage"}, {"train-0000000000.cls", "0"}});
  ShardSource source(cache, bad, {0}, {1}, source_options(true));
  BatchLoader loader(source, {0}, loader_options({1}, 1));
  EXPECT_TRUE(throws_error([&] { loader.next(); }, ErrorKind::kData,
                           {bad.shards[0].key, "train-0000000000"}));
}

// ShardedDataset's options reach the sources it makes: features.crop_scale_min is the smallest
// area of the training crop (the sample's draws are the same; only the area range differs).
TEST(ShardedDataset, TrainingCropsUseTheConfiguredMinimumScale) {
  Ingested d;
  ShardedDataset::Options o;
  o.cache_dir = d.dir / "cache";
  o.cache_bytes = 1ull << 30;
  o.image_size = 12;
  o.horizontal_flip = false;
  o.crop_scale_min = 0.9;
  ShardedDataset dataset(d.store, "pets", d.index.digest, o);
  const std::vector<int64_t> plan = {0, 1, 2, 3, 4, 5, 6, 7};
  auto source = dataset.source(true, plan, {8}, 3, 1);
  const auto samples = dt::read_split(d.store, d.index.train);  // by key: in sample order
  ResizedCrop crop;
  crop.size = 12;
  crop.horizontal_flip = false;
  crop.mean = sharded_mean(3);
  crop.std = sharded_std(3);
  int differ = 0;  // samples whose crop at 0.08 is another (a fallback crop can be the same)
  auto stored = samples.begin();
  for (int64_t i : plan) {
    std::vector<float> got(3 * 12 * 12);
    source->produce(i, i, got.data());
    const Image image = decode_image((stored++)->second.bytes, "expected");
    const auto chw = to_chw(image, 3, image.height, image.width);
    auto expected = [&](double scale_min) {
      crop.scale_min = scale_min;
      std::vector<float> want(got.size());
      random_resized_crop({chw.data(), 3, image.height, image.width}, crop, 3, 1, i, want.data());
      return want;
    };
    EXPECT_EQ(got, expected(0.9)) << "sample " << i;
    differ += got != expected(0.08);
  }
  EXPECT_GT(differ, 0) << "every crop was the same at the default scale";
}

}  // namespace
}  // namespace ddpipe::data
