#include "data/ingest.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "data/formats.h"
#include "fixtures.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::data {
namespace {

namespace dt = ddpipe::testing;
namespace fs = std::filesystem;
using core::ErrorKind;

// Every file under `root` with its size and modification time.
std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> snapshot(const fs::path& root) {
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) {
      out[fs::relative(e.path(), root).string()] = {e.file_size(), e.last_write_time()};
    }
  }
  return out;
}

TEST(IngestTest, StoresOnceByContentAndRoundTrips) {
  dt::TempDir tmp;
  dt::write_idx_dataset(tmp / "idx", dt::pattern_dataset(40, 10, 1, 6, 5, 10, 11), true);
  storage::LocalStore store(tmp / "store");

  const Dataset d = load_idx(tmp / "idx", "digits");
  const IngestResult first = ingest(d, store);
  EXPECT_FALSE(first.already_present);
  EXPECT_EQ(first.name, "digits");
  EXPECT_EQ(first.digest, d.digest);
  EXPECT_EQ(first.prefix, "datasets/digits/" + d.digest + "/");
  for (const char* f :
       {"train.images", "train.labels", "test.images", "test.labels", "manifest.json"}) {
    EXPECT_TRUE(store.exists(first.prefix + f)) << f;
  }
  EXPECT_EQ(store.get(first.prefix + "train.images").size(), 40u * 30);
  EXPECT_EQ(store.get(first.prefix + "test.labels").size(), 10u * 4);
  const auto m = nlohmann::json::parse(store.get(first.prefix + "manifest.json"));
  EXPECT_EQ(m["name"], "digits");
  EXPECT_EQ(m["digest"], d.digest);
  EXPECT_EQ(m["channels"], 1);
  EXPECT_EQ(m["height"], 6);
  EXPECT_EQ(m["width"], 5);
  EXPECT_EQ(m["train_size"], 40);
  EXPECT_EQ(m["test_size"], 10);
  EXPECT_EQ(m["classes"].size(), 10u);
  EXPECT_NEAR(m["mean"][0].get<double>(), d.mean[0], 1e-12);
  EXPECT_NEAR(m["std"][0].get<double>(), d.std[0], 1e-12);
  EXPECT_EQ(m["format_version"], 1);
  EXPECT_EQ(latest_digest(store, "digits"), d.digest);

  // The same files again: already present, nothing written.
  const auto before = snapshot(tmp / "store");
  const IngestResult second = ingest(load_idx(tmp / "idx", "digits"), store);
  EXPECT_TRUE(second.already_present);
  EXPECT_EQ(second.digest, first.digest);
  EXPECT_EQ(snapshot(tmp / "store"), before);

  // Round trip through the cache.
  const fs::path cache = tmp / "cache";
  const Dataset back = load_ingested(store, "digits", d.digest, cache);
  EXPECT_EQ(back.name, "digits");
  EXPECT_EQ(back.digest, d.digest);
  EXPECT_EQ(back.classes, d.classes);
  EXPECT_EQ(back.train.labels, d.train.labels);
  EXPECT_EQ(back.test.labels, d.test.labels);
  EXPECT_TRUE(back.train.images == d.train.images);
  EXPECT_TRUE(back.test.images == d.test.images);
  EXPECT_EQ(back.mean, d.mean);
  EXPECT_EQ(back.std, d.std);
  EXPECT_TRUE(fs::is_regular_file(cache / "datasets" / d.digest / "manifest.json"));

  // Served from the cache once there, even with the store gone.
  fs::remove_all(tmp / "store");
  EXPECT_EQ(load_ingested(store, "digits", d.digest, cache).digest, d.digest);
}

TEST(IngestTest, LatestFollowsTheNewestIngest) {
  dt::TempDir tmp;
  storage::LocalStore store(tmp / "store");
  Dataset a = make_synthetic("syn", 8, 2, 1, 4, 4, 3, 1);
  Dataset b = make_synthetic("syn", 8, 2, 1, 4, 4, 3, 2);
  ingest(a, store);
  EXPECT_FALSE(ingest(b, store).already_present);
  EXPECT_EQ(latest_digest(store, "syn"), b.digest);
  EXPECT_TRUE(ingest(a, store).already_present);  // the data is there; only the pointer moves
  EXPECT_EQ(latest_digest(store, "syn"), a.digest);
  EXPECT_EQ(load_ingested(store, "syn", b.digest, tmp / "cache").digest, b.digest);
}

TEST(IngestTest, TamperedCacheIsDetected) {
  dt::TempDir tmp;
  storage::LocalStore store(tmp / "store");
  const Dataset d = make_synthetic("syn", 16, 4, 3, 4, 4, 3, 5);
  ingest(d, store);
  const fs::path cache = tmp / "cache";
  load_ingested(store, "syn", d.digest, cache);

  const fs::path images = cache / "datasets" / d.digest / "train.images";
  std::string bytes = core::read_file(images);
  bytes[17] = static_cast<char>(bytes[17] ^ 0x01);
  dt::write_bytes(images, bytes);
  EXPECT_TRUE(
      dt::throws_error([&] { load_ingested(store, "syn", d.digest, cache); }, ErrorKind::kData,
                       {"does not match its digest", (cache / "datasets" / d.digest).string()}));

  dt::write_bytes(images, bytes.substr(1));
  EXPECT_TRUE(dt::throws_error([&] { load_ingested(store, "syn", d.digest, cache); },
                               ErrorKind::kData, {images.string(), "bytes"}));

  // Removing the cache folder fetches a good copy again.
  fs::remove_all(cache / "datasets" / d.digest);
  EXPECT_EQ(load_ingested(store, "syn", d.digest, cache).digest, d.digest);

  // A corrupted object in the store is caught on the way in, too.
  fs::remove_all(cache);
  const fs::path stored = tmp / "store" / "datasets" / "syn" / d.digest / "test.labels";
  std::string labels = core::read_file(stored);
  labels[0] = labels[0] == 0 ? 1 : 0;
  dt::write_bytes(stored, labels);
  EXPECT_TRUE(dt::throws_error([&] { load_ingested(store, "syn", d.digest, cache); },
                               ErrorKind::kData, {"does not match its digest"}));
}

TEST(IngestTest, MissingAndInvalid) {
  dt::TempDir tmp;
  storage::LocalStore store(tmp / "store");
  EXPECT_TRUE(dt::throws_error([&] { latest_digest(store, "nothing"); }, ErrorKind::kNotFound,
                               {"nothing", "ingest"}));
  const std::string absent(64, 'a');
  EXPECT_TRUE(dt::throws_error([&] { load_ingested(store, "nothing", absent, tmp / "c"); },
                               ErrorKind::kNotFound, {"nothing", absent}));
  EXPECT_TRUE(dt::throws_error([&] { load_ingested(store, "x", "../../etc", tmp / "c"); },
                               ErrorKind::kUsage, {"digest"}));
  Dataset d = make_synthetic("a/b", 4, 1, 1, 2, 2, 2, 0);
  EXPECT_TRUE(dt::throws_error([&] { ingest(d, store); }, ErrorKind::kUsage, {"a/b"}));
  d.name = "ok";
  d.digest.clear();
  EXPECT_TRUE(dt::throws_error([&] { ingest(d, store); }, ErrorKind::kUsage, {"finalized"}));
}

}  // namespace
}  // namespace ddpipe::data
