// shards/ingest.h: an image folder of real PNG and JPEG files into a real LocalStore — every
// image once, byte for byte, with its label; deterministic shards and digest; resume after a
// crash without putting the finished shards again; bad files by policy.
#include "shards/ingest.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <set>

#include "core/fs.h"
#include "core/strings.h"
#include "data/image.h"
#include "fixtures.h"
#include "shards/listing.h"
#include "shards_fixtures.h"
#include "test_util.h"

namespace ddpipe::shards {
namespace {

namespace fs = std::filesystem;
using core::ErrorKind;
using ddpipe::testing::CountingStore;
using ddpipe::testing::throws_error;

struct SimulatedCrash : std::runtime_error {
  SimulatedCrash() : std::runtime_error("simulated crash") {}
};

class ShardsIngest : public ::testing::Test {
 protected:
  void SetUp() override {
    files_ = ddpipe::testing::write_image_folder(dir_ / "images", {"cat", "dog", "eel"}, 12, 5);
    // One image bigger than a shard: a shard of its own, kept whole.
    ddpipe::testing::write_bytes(dir_ / "images" / "dog" / "huge.png",
                                 ddpipe::testing::noise_png(700, 600, 99));
    ++files_;
  }
  IngestOptions options(int workers = 2) const {
    IngestOptions o;
    o.root = dir_ / "images";
    o.name = "pets";
    o.test_fraction = 0.25;
    o.seed = 7;
    o.shard_mb = 1;
    o.workers = workers;
    o.show_progress = false;
    return o;
  }

  ddpipe::testing::TempDir dir_;
  int files_ = 0;
};

// Every listed file is in the stored dataset once, byte for byte, with its label and split.
void expect_every_image_once(storage::Store& store, const DatasetIndex& index,
                             const IngestOptions& o) {
  FolderListing l = list_image_folder(o.root, o.test_fraction, o.seed);
  shuffle_for_shards(l, o.seed);
  for (bool test : {false, true}) {
    const auto& entries = test ? l.test : l.train;
    const auto samples = ddpipe::testing::read_split(store, test ? index.test : index.train);
    ASSERT_EQ(samples.size(), entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      char key[32];
      std::snprintf(key, sizeof key, "%s-%010zu", test ? "test" : "train", i);
      const auto it = samples.find(key);
      ASSERT_NE(it, samples.end()) << key;
      EXPECT_EQ(it->second.bytes, core::read_file(entries[i].path)) << entries[i].path;
      EXPECT_EQ(it->second.label, entries[i].label) << entries[i].path;
      const bool jpeg = core::to_lower(entries[i].path.extension().string()) == ".jpg";
      EXPECT_EQ(it->second.ext, jpeg ? "jpg" : "png") << entries[i].path;
    }
  }
}

TEST_F(ShardsIngest, EveryImageOnceByteForByteWithItsLabel) {
  CountingStore store(dir_ / "store");
  const IngestReport r = ingest_image_folder(options(), store);
  EXPECT_FALSE(r.already_present);
  EXPECT_EQ(r.train_samples + r.test_samples, files_);
  EXPECT_GE(r.shards, 3) << "megabytes of images in 1 MiB shards";
  EXPECT_EQ(r.shards_built, r.shards);
  EXPECT_EQ(store.shard_puts, r.shards);
  EXPECT_EQ(store.get(latest_key("pets")), r.digest + "\n");
  const DatasetIndex index = read_index(store, "pets", r.digest);
  EXPECT_EQ(index.classes, (std::vector<std::string>{"cat", "dog", "eel"}));
  EXPECT_EQ(index.shard_mb, 1);
  EXPECT_EQ(index.source["split"], "seeded");
  for (const auto& s : index.train.shards) {
    EXPECT_TRUE(s.bytes <= 1024 * 1024 || s.samples == 1) << s.key << " " << s.bytes;
  }
  expect_every_image_once(store, index, options());
}

// The folder packed as one uncompressed tar archive is ingested in place: the same shards and
// the same digest as the folder itself.
TEST_F(ShardsIngest, ATarOfTheFolderGivesTheSameDataset) {
  const std::string d = dir_.path().string();
  const auto tar = ddpipe::testing::run_command("tar cf " + d + "/images.tar -C " + d + " images");
  ASSERT_EQ(tar.exit_code, 0) << tar.output;
  CountingStore folder_store(dir_ / "store-folder"), archive_store(dir_ / "store-archive");
  const IngestReport folder = ingest_image_folder(options(), folder_store);
  IngestOptions o = options();
  o.root = dir_ / "images.tar";
  const IngestReport archive = ingest_image_folder(o, archive_store);
  EXPECT_EQ(archive.digest, folder.digest);
  EXPECT_EQ(archive.shards, folder.shards);
  EXPECT_EQ(archive.train_samples + archive.test_samples, files_);
}

// The folder is sorted by class; the shards are not: each holds a seeded mix of its split, so
// a shard permutation and a shuffle buffer mix the classes. Another seed, another mix.
TEST_F(ShardsIngest, ShardsMixTheClassesOfAClassSortedFolder) {
  CountingStore store(dir_ / "store"), other(dir_ / "other");
  const IngestReport r = ingest_image_folder(options(), store);
  const DatasetIndex index = read_index(store, "pets", r.digest);
  std::vector<int64_t> labels;  // in sample order
  for (const auto& [key, sample] : ddpipe::testing::read_split(store, index.train))
    labels.push_back(sample.label);
  EXPECT_FALSE(std::is_sorted(labels.begin(), labels.end())) << "written in the folder's order";
  const auto fullest =
      std::max_element(index.train.shards.begin(), index.train.shards.end(),
                       [](const ShardRef& a, const ShardRef& b) { return a.samples < b.samples; });
  std::set<int64_t> classes;
  for (const auto& [key, sample] : ddpipe::testing::read_split(store, {0, {*fullest}}))
    classes.insert(sample.label);
  EXPECT_GE(classes.size(), 2u) << "a shard of " << fullest->samples << " holds one class";
  IngestOptions o = options();
  o.seed = 8;
  EXPECT_NE(ingest_image_folder(o, other).digest, r.digest);
}

TEST_F(ShardsIngest, SameFolderSameShardsAndDigest) {
  CountingStore a(dir_ / "a"), b(dir_ / "b");
  const IngestReport ra = ingest_image_folder(options(1), a);
  const IngestReport rb = ingest_image_folder(options(3), b);
  EXPECT_EQ(ra.digest, rb.digest) << "the worker count does not change the result";
  EXPECT_EQ(a.get(index_key("pets", ra.digest)), b.get(index_key("pets", rb.digest)));
  // Again into the same store: nothing built, nothing put but the progress object's reads.
  const int puts = a.puts;
  const IngestReport again = ingest_image_folder(options(), a);
  EXPECT_TRUE(again.already_present);
  EXPECT_EQ(again.digest, ra.digest);
  EXPECT_EQ(again.shards_built, 0);
  EXPECT_EQ(again.shards_resumed, ra.shards);
  EXPECT_EQ(a.puts, puts);
}

TEST_F(ShardsIngest, ResumesAfterACrashWithoutPuttingFinishedShardsAgain) {
  CountingStore store(dir_ / "store");
  IngestOptions crashing = options(1);
  int done = 0;
  crashing.after_shard = [&](const ShardRef&) {
    if (++done == 2) throw SimulatedCrash();
  };
  EXPECT_THROW(ingest_image_folder(crashing, store), SimulatedCrash);
  EXPECT_EQ(store.shard_puts, 2);
  EXPECT_TRUE(store.list("datasets/pets/ingest/").size() == 1) << "the progress object";
  EXPECT_FALSE(store.exists(latest_key("pets"))) << "no index, no pointer after a crash";
  for (const auto& o : store.list("datasets/pets/")) {
    EXPECT_EQ(o.key.find("index.json"), std::string::npos) << o.key;
  }

  store.shard_puts = 0;
  const IngestReport r = ingest_image_folder(options(2), store);
  EXPECT_EQ(r.shards_resumed, 2);
  EXPECT_EQ(r.shards_built, r.shards - 2);
  EXPECT_EQ(store.shard_puts, r.shards - 2);
  CountingStore fresh(dir_ / "fresh");
  EXPECT_EQ(ingest_image_folder(options(), fresh).digest, r.digest);
  expect_every_image_once(store, read_index(store, "pets", r.digest), options());
}

TEST_F(ShardsIngest, AKillBeforeTheProgressIsSavedRebuildsButDoesNotPutAgain) {
  CountingStore store(dir_ / "store");
  IngestOptions crashing = options(1);
  crashing.progress_interval_s = 1e9;
  int done = 0;
  crashing.after_shard = [&](const ShardRef&) {
    if (++done == 2) throw SimulatedCrash();
  };
  EXPECT_THROW(ingest_image_folder(crashing, store), SimulatedCrash);
  // A kill would not have saved the progress at the end, as the throw above did.
  for (const auto& o : store.list("datasets/pets/ingest/")) store.remove(o.key);
  store.shard_puts = 0;
  const IngestReport r = ingest_image_folder(options(), store);
  EXPECT_EQ(r.shards_resumed, 0);
  EXPECT_EQ(r.shards_built, r.shards);
  EXPECT_EQ(store.shard_puts, r.shards - 2) << "the two in the pool are not put again";
}

TEST_F(ShardsIngest, AGarbledProgressObjectIsIgnored) {
  CountingStore store(dir_ / "store");
  const IngestReport first = ingest_image_folder(options(), store);
  const auto progress = store.list("datasets/pets/ingest/");
  ASSERT_EQ(progress.size(), 1u);
  for (const std::string garbled :
       {"{not json", R"({"shards": {"train/000000": {"samples": "three", "sha256": 5}}})",
        R"({"shards": {"train/000000": {"samples": 2, "sha256": "../../x"}}})"}) {
    store.put(progress[0].key, garbled);
    store.remove(index_key("pets", first.digest));
    store.shard_puts = 0;
    const IngestReport r = ingest_image_folder(options(), store);
    EXPECT_EQ(r.digest, first.digest) << garbled;
    EXPECT_EQ(r.shards_resumed, 0) << garbled;
    EXPECT_EQ(store.shard_puts, 0) << "all in the pool already";
  }
}

TEST_F(ShardsIngest, ARecordedShardMissingFromTheStoreIsBuiltAgain) {
  CountingStore store(dir_ / "store");
  const IngestReport first = ingest_image_folder(options(), store);
  const DatasetIndex index = read_index(store, "pets", first.digest);
  store.remove(index.train.shards[1].key);
  store.remove(index_key("pets", first.digest));
  store.shard_puts = 0;
  const IngestReport r = ingest_image_folder(options(), store);
  EXPECT_EQ(r.digest, first.digest);
  EXPECT_EQ(r.shards_built, 1);
  EXPECT_EQ(store.shard_puts, 1);
  EXPECT_TRUE(store.exists(index.train.shards[1].key));
}

TEST_F(ShardsIngest, AFileThatIsNoImageFailsOrIsSkipped) {
  ddpipe::testing::write_bytes(dir_ / "images" / "eel" / "fake.jpg", "GIF89a not a jpeg");
  CountingStore store(dir_ / "store");
  EXPECT_TRUE(throws_error([&] { ingest_image_folder(options(), store); }, ErrorKind::kData,
                           {(dir_ / "images" / "eel" / "fake.jpg").string(), "not a JPEG or PNG"}));
  EXPECT_FALSE(store.exists(latest_key("pets")));
  IngestOptions skip = options();
  skip.bad_image = BadImagePolicy::kSkip;
  const IngestReport r = ingest_image_folder(skip, store);
  EXPECT_EQ(r.skipped_files, 1);
  EXPECT_EQ(r.train_samples + r.test_samples, files_);
}

TEST_F(ShardsIngest, AHeaderThatDoesNotParseFailsNamingTheFileOrIsSkipped) {
  const fs::path eel = dir_ / "images" / "eel";
  const std::string png = ddpipe::testing::noise_png(20, 20, 4);
  std::string lying = png;  // claims 65536 × 65536 pixels, with a valid CRC
  lying.replace(16, 8, std::string("\0\1\0\0\0\1\0\0", 8));
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(lying.data() + 12), 17);
  for (int b = 0; b < 4; ++b) lying[29 + b] = static_cast<char>((crc >> (24 - 8 * b)) & 0xff);
  const std::string jpeg = ddpipe::testing::noise_jpeg(20, 20, 4);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"cut.png", png.substr(0, 20)},  // cut inside IHDR
      {"lying.png", lying},
      {"cut.jpg", jpeg.substr(0, 40)},  // cut inside its header
  };
  CountingStore store(dir_ / "store");
  IngestOptions o = options();
  o.check_image = data::image_member_extension;
  for (const auto& [name, bytes] : bad) {  // each alone in the folder
    ddpipe::testing::write_bytes(eel / name, bytes);
    EXPECT_TRUE(throws_error([&] { ingest_image_folder(o, store); }, ErrorKind::kData,
                             {(eel / name).string(), "data.bad_images=skip"}))
        << name;
    fs::remove(eel / name);
  }
  EXPECT_FALSE(store.exists(latest_key("pets")));
  for (const auto& [name, bytes] : bad) ddpipe::testing::write_bytes(eel / name, bytes);
  o.bad_image = BadImagePolicy::kSkip;
  const IngestReport r = ingest_image_folder(o, store);
  EXPECT_EQ(r.skipped_files, 3);
  EXPECT_EQ(r.train_samples + r.test_samples, files_);
  // The magic bytes alone (no check_image) let all three through.
  const IngestReport magic = ingest_image_folder(options(), store);
  EXPECT_EQ(magic.train_samples + magic.test_samples, files_ + 3);
}

TEST_F(ShardsIngest, TheExtensionComesFromTheMagicBytes) {
  // A JPEG named .png is stored as .jpg (decoders go by the member's extension).
  fs::rename(dir_ / "images" / "cat" / "cat_1.JPG", dir_ / "images" / "cat" / "cat_1.png");
  CountingStore store(dir_ / "store");
  const IngestReport r = ingest_image_folder(options(), store);
  const DatasetIndex index = read_index(store, "pets", r.digest);
  int jpegs = 0;
  for (const auto* split : {&index.train, &index.test}) {
    for (const auto& [key, s] : ddpipe::testing::read_split(store, *split)) {
      const bool is_jpeg = s.bytes.rfind("\xff\xd8\xff", 0) == 0;
      EXPECT_EQ(s.ext, is_jpeg ? "jpg" : "png") << key;
      jpegs += is_jpeg;
    }
  }
  EXPECT_EQ(jpegs, 18);
}

TEST_F(ShardsIngest, BadOptionsAreUsageErrors) {
  CountingStore store(dir_ / "store");
  IngestOptions o = options();
  o.shard_mb = 0;
  EXPECT_TRUE(
      throws_error([&] { ingest_image_folder(o, store); }, ErrorKind::kUsage, {"data.shard_mb"}));
  o = options();
  o.channels = 2;
  EXPECT_TRUE(
      throws_error([&] { ingest_image_folder(o, store); }, ErrorKind::kUsage, {"data.channels"}));
  o = options();
  o.name = "a/b";
  EXPECT_TRUE(throws_error([&] { ingest_image_folder(o, store); }, ErrorKind::kUsage, {"a/b"}));
}

}  // namespace
}  // namespace ddpipe::shards
