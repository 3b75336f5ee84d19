// data::ingest_sharded of the in-memory formats (Debian's Fashion-MNIST, CIFAR-10 batches,
// synthetic) into a real LocalStore: every sample decodes to exactly the in-memory form's bytes
// and label, in the same splits; deterministic digests. And the bad-image policy of training: a
// shard holding a JPEG whose body is cut, read through a ShardSource and a BatchLoader.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "core/hash.h"
#include "data/formats.h"
#include "data/image.h"
#include "data/ingest.h"
#include "data/shard_source.h"
#include "fixtures.h"
#include "shards/tar.h"
#include "shards_fixtures.h"
#include "test_util.h"

namespace ddpipe::data {
namespace {

namespace fs = std::filesystem;
namespace dt = ddpipe::testing;
using core::ErrorKind;
using dt::throws_error;

std::string key_of(const char* split, size_t i) {
  char key[32];
  std::snprintf(key, sizeof key, "%s-%010zu", split, i);
  return key;
}

// The stored sharded dataset holds exactly `memory`: each sample a PNG that decodes to its
// bytes, with its label, at its position.
void expect_same_as_memory(storage::Store& store, const shards::DatasetIndex& index,
                           const Dataset& memory) {
  EXPECT_EQ(index.classes, memory.classes);
  EXPECT_EQ(index.channels, memory.channels);
  EXPECT_EQ(index.source.at("content_digest"), memory.digest);
  for (bool test : {false, true}) {
    const Split& split = test ? memory.test : memory.train;
    const auto samples = dt::read_split(store, test ? index.test : index.train);
    ASSERT_EQ(static_cast<int64_t>(samples.size()), split.size());
    EXPECT_EQ((test ? index.test : index.train).samples, split.size());
    const auto n = static_cast<size_t>(memory.image_bytes());
    for (size_t i = 0; i < samples.size(); ++i) {
      const auto it = samples.find(key_of(test ? "test" : "train", i));
      ASSERT_NE(it, samples.end()) << i;
      ASSERT_EQ(it->second.ext, "png");
      const Image image = decode_image(it->second.bytes, it->first);
      const auto chw = to_chw(image, memory.channels, memory.height, memory.width);
      ASSERT_EQ(image.height, memory.height);
      ASSERT_EQ(image.width, memory.width);
      ASSERT_TRUE(std::equal(chw.begin(), chw.end(), split.images.begin() + i * n)) << it->first;
      ASSERT_EQ(it->second.label, split.labels[i]) << it->first;
    }
  }
}

shards::DatasetIndex ingest_into(storage::Store& store, const core::DataConfig& config) {
  const shards::IngestReport r = ingest_sharded(config, 5, store, false);
  return shards::read_index(store, config.name, r.digest);
}

TEST(ShardedIngest, FashionMnistDecodesToTheInMemoryFormByteForByte) {
  const fs::path path = "/usr/share/datasets/fashion-mnist";
  ASSERT_TRUE(fs::exists(path / "train-images-idx3-ubyte.gz"))
      << path << " is missing: apt-get install dataset-fashion-mnist";
  dt::TempDir dir;
  dt::CountingStore store(dir / "store");
  core::DataConfig config;  // the defaults: Fashion-MNIST in IDX
  config.form = "sharded";
  config.shard_mb = 32;
  const shards::DatasetIndex index = ingest_into(store, config);
  EXPECT_GT(index.train.shards.size(), 1u);
  EXPECT_EQ(index.source.at("format"), "idx");
  const Dataset memory = load_source(config, 5);
  EXPECT_EQ(memory.train.size(), 60000);
  EXPECT_EQ(memory.test.size(), 10000);
  expect_same_as_memory(store, index, memory);
}

TEST(ShardedIngest, SyntheticAndCifarAreTheInMemoryFormWithDeterministicDigests) {
  dt::TempDir dir;
  core::DataConfig synthetic;
  synthetic.format = "synthetic";
  synthetic.name = "noise";
  synthetic.train_size = 1500;
  synthetic.test_size = 300;
  synthetic.height = 7;
  synthetic.width = 5;
  synthetic.shard_mb = 1;  // ~500 samples a shard: several
  std::string digest;
  for (int run = 0; run < 2; ++run) {  // a fresh store each time: the same shards and digest
    dt::CountingStore store(dir / ("store" + std::to_string(run)));
    const shards::DatasetIndex index = ingest_into(store, synthetic);
    EXPECT_EQ(index.train.shards.size(), 3u);
    expect_same_as_memory(store, index, load_source(synthetic, 5));
    if (run == 1) EXPECT_EQ(index.digest, digest);
    digest = index.digest;
  }

  const Dataset cifar = dt::pattern_dataset(10, 4, 3, 32, 32, 10, 3);
  dt::write_cifar_dir(dir / "cifar", cifar, true);
  core::DataConfig config;
  config.format = "cifar10";
  config.name = "cifar";
  config.path = (dir / "cifar").string();
  dt::CountingStore store(dir / "store-cifar");
  expect_same_as_memory(store, ingest_into(store, config), load_source(config, 5));
}

TEST(ShardedIngest, ImagesLeftOutAtIngestLeaveGapsInTheKeysThatTrainingReadsPast) {
  dt::TempDir dir;
  dt::write_image_folder(dir / "folder" / "train", {"a", "b"}, 30, 4);
  dt::write_image_folder(dir / "folder" / "test", {"a", "b"}, 2, 5);
  dt::write_bytes(dir / "folder" / "train" / "a" / "cat_0x.png", "not an image");  // a gap
  dt::CountingStore store(dir / "store");
  core::DataConfig config;
  config.format = "image-folder";
  config.name = "pets";
  config.path = (dir / "folder").string();
  config.shard_mb = 1;
  config.bad_images = "skip";
  ::testing::internal::CaptureStderr();
  const shards::IngestReport r = ingest_sharded(config, 5, store, false);
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.skipped_files, 1);
  const shards::DatasetIndex index = shards::read_index(store, "pets", r.digest);
  ASSERT_GT(index.train.shards.size(), 1u);
  std::vector<int64_t> labels;  // in key order = sample order
  for (const auto& [key, sample] : dt::read_split(store, index.train))
    labels.push_back(sample.label);
  ASSERT_EQ(static_cast<int64_t>(labels.size()), index.train.samples);
  std::vector<int64_t> plan(labels.size());
  for (size_t i = 0; i < plan.size(); ++i) plan[i] = static_cast<int64_t>(i);
  shards::ShardCache cache(store, dir / "cache", 1ull << 30);
  ShardSourceOptions o;
  o.crop.size = 8;
  ShardSource source(cache, index.train, plan, {static_cast<int64_t>(plan.size())}, o);
  LoaderOptions lo;
  lo.batch_size = static_cast<int64_t>(plan.size());
  BatchLoader loader(source, plan, lo);
  const auto batch = loader.next();
  ASSERT_TRUE(batch);
  EXPECT_EQ(std::vector<int64_t>(batch->labels.data_ptr<int64_t>(),
                                 batch->labels.data_ptr<int64_t>() + batch->labels.size(0)),
            labels);
}

// One shard of `images` (train-000000000i.<ext>, class i % 3) in the pool of "pets".
shards::SplitIndex put_shard(storage::Store& store,
                             const std::vector<std::pair<std::string, std::string>>& images) {
  std::string tar;
  shards::TarWriter w(tar);
  for (size_t i = 0; i < images.size(); ++i) {
    w.add(key_of("train", i) + "." + images[i].first, images[i].second);
    w.add(key_of("train", i) + ".cls", std::to_string(i % 3));
  }
  w.finish();
  shards::ShardRef r;
  r.sha256 = core::sha256_hex(tar);
  r.key = shards::shard_key("pets", r.sha256);
  r.bytes = tar.size();
  r.samples = static_cast<int64_t>(images.size());
  r.first_key = key_of("train", 0);
  store.put(r.key, tar);
  return {r.samples, {r}};
}

// Four samples; the third a JPEG whose header is fine and whose body is cut.
shards::SplitIndex shard_with_a_cut_jpeg(storage::Store& store) {
  std::vector<uint8_t> pixels(40 * 30 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  const std::string jpeg = dt::encode_jpeg(40, 30, 3, pixels);
  const std::string cut = jpeg.substr(0, jpeg.size() / 2);
  EXPECT_EQ(read_image_header(cut, "cut").width, 40) << "its header parses";
  const std::string png = encode_png(pixels.data(), 3, 30, 40);
  return put_shard(store, {{"png", png}, {"jpg", jpeg}, {"jpg", cut}, {"png", png}});
}

ShardSourceOptions skip_options(shards::BadImagePolicy policy) {
  ShardSourceOptions o;
  o.crop.size = 8;
  o.bad_images = policy;
  return o;
}

// The labels a loader delivers over `plan` in batches of `sizes`.
std::vector<int64_t> delivered(ShardSource& source, const std::vector<int64_t>& plan,
                               const std::vector<int64_t>& sizes) {
  LoaderOptions lo;
  lo.batch_sizes = sizes;
  lo.workers = 2;
  BatchLoader loader(source, plan, lo);
  std::vector<int64_t> labels;
  while (auto b = loader.next()) {
    EXPECT_EQ(b->images.size(0), b->labels.size(0));
    for (int64_t i = 0; i < b->labels.size(0); ++i) labels.push_back(b->labels[i].item<int64_t>());
  }
  return labels;
}

// Warnings about a left-out image in a log.
int warnings(const std::string& log) {
  int n = 0;
  const std::string msg = "leaving out an image that does not decode";
  for (size_t at = log.find(msg); at != std::string::npos; at = log.find(msg, at + 1)) ++n;
  return n;
}

TEST(ShardedBadImages, ACutJpegFailsNamingShardAndKeyOrIsLeftOutOnce) {
  dt::TempDir dir;
  dt::CountingStore store(dir / "store");
  shards::ShardCache cache(store, dir / "cache", 1ull << 30);
  const shards::SplitIndex split = shard_with_a_cut_jpeg(store);
  const std::string shard = split.shards[0].key;
  const std::vector<int64_t> plan = {0, 2, 1, 2, 3};  // the cut one twice (as padding repeats)
  {
    ShardSource source(cache, split, plan, {3, 2}, skip_options(shards::BadImagePolicy::kFail));
    EXPECT_TRUE(throws_error(
        [&] {
          delivered(source, plan, {3, 2});
        },
        ErrorKind::kData, {shard, "train-0000000002", "data.bad_images=skip"}));
  }
  ShardSource source(cache, split, plan, {3, 2}, skip_options(shards::BadImagePolicy::kSkip));
  ::testing::internal::CaptureStderr();
  const std::vector<int64_t> labels = delivered(source, plan, {3, 2});
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 1, 0})) << "positions 0, 1, 3: each other once";
  EXPECT_EQ(source.skipped().count(), 2) << "left out as often as the plan lists it";
  EXPECT_EQ(warnings(log), 1) << "warned once: " << log;
  EXPECT_NE(log.find("shard " + shard + ", sample train-0000000002"), std::string::npos) << log;

  // A batch of nothing but bad images has nothing to train on: an error naming the batch.
  ShardSource lone(cache, split, {2}, {1}, skip_options(shards::BadImagePolicy::kSkip));
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(throws_error([&] { delivered(lone, {2}, {1}); }, ErrorKind::kData,
                           {"batch 0", "every one of its 1 samples", "data.bad_images=skip"}));
  ::testing::internal::GetCapturedStderr();
}

TEST(ShardedBadImages, ADatasetsSourcesShareTheSkippedImages) {
  dt::TempDir dir;
  dt::CountingStore store(dir / "store");
  shards::ShardCache cache(store, dir / "cache", 1ull << 30);
  const shards::SplitIndex split = shard_with_a_cut_jpeg(store);
  ShardSourceOptions o = skip_options(shards::BadImagePolicy::kSkip);
  o.skipped = std::make_shared<SkippedImages>();
  ::testing::internal::CaptureStderr();
  for (int epoch = 0; epoch < 2; ++epoch) {
    ShardSource source(cache, split, {0, 1, 2, 3}, {4}, o);
    EXPECT_EQ(delivered(source, {0, 1, 2, 3}, {4}).size(), 3u);
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(o.skipped->count(), 2);
  EXPECT_EQ(warnings(log), 1) << "once a run, not once an epoch: " << log;
  EXPECT_NE(log.find("train-0000000002"), std::string::npos) << log;
}

}  // namespace
}  // namespace ddpipe::data
