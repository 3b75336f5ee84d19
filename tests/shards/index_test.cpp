// shards/index.h: keys, a round trip through JSON, validation errors, writing and reading.
#include "shards/index.h"

#include <gtest/gtest.h>

#include "core/hash.h"
#include "fixtures.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::shards {
namespace {

using core::ErrorKind;
using ddpipe::testing::throws_error;

DatasetIndex example_index() {
  DatasetIndex index;
  index.name = "pets";
  index.classes = {"cat", "dog"};
  index.channels = 3;
  index.shard_mb = 64;
  index.source = {{"format", "image-folder"}, {"split", "seeded"}};
  const std::string a = core::sha256_hex("a"), b = core::sha256_hex("b"), c = core::sha256_hex("c");
  index.train = {5,
                 {{shard_key("pets", a), a, 4096, 3, "train-0000000000"},
                  {shard_key("pets", b), b, 2048, 2, "train-0000000003"}}};
  index.test = {1, {{shard_key("pets", c), c, 1536, 1, "test-0000000000"}}};
  seal(index);
  return index;
}

TEST(Index, KeysAreStatedOnce) {
  const std::string d(64, 'a');
  EXPECT_EQ(latest_key("pets"), "datasets/pets/latest");
  EXPECT_EQ(index_key("pets", d), "datasets/pets/" + d + "/index.json");
  EXPECT_EQ(shard_key("pets", d), "datasets/pets/shards/" + d + ".tar");
  EXPECT_EQ(progress_key("pets", d), "datasets/pets/ingest/" + d + ".json");
  EXPECT_TRUE(throws_error([] { shard_key("a/b", "x"); }, ErrorKind::kUsage, {"a/b"}));
  EXPECT_TRUE(throws_error([] { latest_key(""); }, ErrorKind::kUsage, {"non-empty"}));
}

TEST(Index, RoundTripThroughJson) {
  const DatasetIndex index = example_index();
  EXPECT_TRUE(is_sha256_hex(index.digest));
  EXPECT_EQ(index.digest, core::sha256_hex(to_json(index, false).dump()));
  const DatasetIndex back = parse_index(to_json(index).dump(2), "index.json");
  EXPECT_EQ(to_json(back), to_json(index));
  EXPECT_EQ(back.digest, index.digest);
  EXPECT_EQ(back.train.shards[1].first_key, "train-0000000003");
  EXPECT_EQ(back.test.shards[0].bytes, 1536u);
  DatasetIndex other = example_index();
  other.channels = 1;
  seal(other);
  EXPECT_NE(other.digest, index.digest) << "every field is in the digest";
}

// Parses `j` after `edit`, expecting a kData error naming the origin and `what`.
::testing::AssertionResult refused(const std::function<void(nlohmann::json&)>& edit,
                                   const std::string& what) {
  nlohmann::json j = to_json(example_index());
  edit(j);
  if (j.contains("digest") && j["digest"] == example_index().digest) {
    nlohmann::json without = j;
    without.erase("digest");
    j["digest"] = core::sha256_hex(without.dump());  // re-seal: the check under test is another
  }
  return throws_error([&] { parse_index(j.dump(), "s3://b/datasets/pets/x/index.json"); },
                      ErrorKind::kData, {"s3://b/datasets/pets/x/index.json", what});
}

TEST(Index, ValidationNamesTheIndexAndTheProblem) {
  EXPECT_TRUE(refused([](auto& j) { j["format"] = "memory"; }, "not a ddpipe sharded index"));
  EXPECT_TRUE(refused([](auto& j) { j["version"] = 2; }, "version 2"));
  EXPECT_TRUE(refused([](auto& j) { j["channels"] = 2; }, "channels is 2, expected 1 or 3"));
  EXPECT_TRUE(refused([](auto& j) { j["classes"] = nlohmann::json::array(); }, "no classes"));
  EXPECT_TRUE(refused([](auto& j) { j.erase("splits"); }, "splits"));
  EXPECT_TRUE(refused([](auto& j) { j["splits"]["train"]["samples"] = 6; },
                      "split train: \"samples\" is 6 but its shards hold 5"));
  EXPECT_TRUE(
      refused([](auto& j) { j["splits"]["test"]["shards"][0]["key"] = "datasets/pets/x.tar"; },
              "split test: shard 'datasets/pets/x.tar'"));
  EXPECT_TRUE(refused([](auto& j) { j["splits"]["train"]["shards"][0]["samples"] = "3"; },
                      "invalid sharded dataset index"));
  EXPECT_TRUE(
      refused([](auto& j) { j["digest"] = std::string(64, '0'); }, "but the content's digest is"));
  // A float where an integer belongs was converted to int64_t (undefined for 1e300), and huge
  // shard sample counts overflowed their sum (tests/shards/fuzz).
  EXPECT_TRUE(refused([](auto& j) { j["channels"] = 1e300; }, "channels must be an integer"));
  EXPECT_TRUE(refused([](auto& j) { j["splits"]["train"]["shards"][0]["samples"] = 3.0; },
                      "samples must be an integer"));
  EXPECT_TRUE(refused(
      [](auto& j) {
        j["splits"]["train"]["shards"][0]["samples"] = INT64_MAX;
        j["splits"]["train"]["shards"][1]["samples"] = INT64_MAX;
      },
      "samples add up to more than 2^63"));
  EXPECT_TRUE(throws_error([] { parse_index("{", "i.json"); }, ErrorKind::kData,
                           {"i.json", "invalid sharded dataset index"}));
}

TEST(Index, WrittenLastAfterEveryShardThenLatest) {
  ddpipe::testing::TempDir dir;
  storage::LocalStore store(dir / "store");
  DatasetIndex index = example_index();
  EXPECT_TRUE(throws_error([&] { write_index(store, index); }, ErrorKind::kData,
                           {index.train.shards[0].key, "is not in", "only after every shard"}));
  EXPECT_FALSE(store.exists(index_key("pets", index.digest)));
  for (const auto* split : {&index.train, &index.test}) {
    for (const auto& s : split->shards) store.put(s.key, "bytes");
  }
  EXPECT_TRUE(write_index(store, index));
  EXPECT_EQ(store.get(latest_key("pets")), index.digest + "\n");
  EXPECT_EQ(latest_digest(store, "pets"), index.digest);
  EXPECT_TRUE(throws_error([&] { latest_digest(store, "cats"); }, ErrorKind::kNotFound,
                           {"'cats' was never ingested", "data.name=cats"}));
  EXPECT_FALSE(write_index(store, index)) << "already there";
  EXPECT_EQ(to_json(read_index(store, "pets", index.digest)), to_json(index));

  const std::string other(64, 'e');
  EXPECT_TRUE(throws_error([&] { read_index(store, "pets", other); }, ErrorKind::kNotFound,
                           {"pets", other, "data.form=sharded"}));
  store.put(index_key("pets", other), store.get(index_key("pets", index.digest)));
  EXPECT_TRUE(throws_error([&] { read_index(store, "pets", other); }, ErrorKind::kData,
                           {index.digest, "expected 'pets' digest " + other}));
  EXPECT_TRUE(throws_error([&] { read_index(store, "pets", "abc"); }, ErrorKind::kUsage,
                           {"not a SHA-256"}));
}

}  // namespace
}  // namespace ddpipe::shards
