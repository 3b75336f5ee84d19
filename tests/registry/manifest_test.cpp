#include "registry/manifest.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/fs.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::registry {
namespace {

using nlohmann::json;

// A manifest as the trainer wrote it before schema_version existed (resnet-mini, width 4,
// 8×8 synthetic images; see docs/storage.md).
json v1_document() {
  return json::parse(
      core::read_file(std::string(DDPIPE_SOURCE_DIR) + "/tests/registry/data/manifest_v1.json"));
}

// Runs `f`, expecting core::Error(kData) whose message contains every one of `parts`.
template <class F>
void expect_data_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kData) << e.what();
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(Manifest, ReadsAVersion1ManifestOfTheTrainer) {
  const Manifest m = Manifest::from_json(v1_document(), "manifest_v1.json");
  EXPECT_EQ(m.schema_version, 1);
  EXPECT_EQ(m.dataset.name, "fashion-mnist");
  EXPECT_EQ(m.dataset.digest.size(), 64u);
  EXPECT_EQ(m.dataset.classes.size(), 10u);
  EXPECT_EQ(m.dataset.channels, 3);
  EXPECT_EQ(m.dataset.height, 8);
  EXPECT_EQ(m.dataset.width, 8);
  EXPECT_EQ(m.dataset.mean.size(), 3u);
  EXPECT_EQ(m.dataset.std.size(), 3u);
  EXPECT_EQ(m.dataset.train_size, 256);
  EXPECT_EQ(m.dataset.test_size, 64);
  EXPECT_EQ(m.model_spec.arch, "resnet-mini");
  EXPECT_EQ(m.model_spec.in_channels, 3);
  EXPECT_EQ(m.model_spec.num_classes, 10);
  EXPECT_EQ(m.model_spec.width, 4);
  EXPECT_TRUE(m.preprocess.normalize);
  EXPECT_TRUE(m.preprocess.channels_last);
  EXPECT_EQ(m.lineage.dataset, "datasets/fashion-mnist/" + m.dataset.digest + "/");
  EXPECT_EQ(m.lineage.resumed_from, "");
  EXPECT_NE(m.config.find("name: fmnist-resnet"), std::string::npos);
  EXPECT_EQ(m.world_size, 1);
  EXPECT_EQ(m.seed, 42);
  EXPECT_EQ(m.parameters, 5214);
  ASSERT_EQ(m.epochs.size(), 1u);
  EXPECT_EQ(m.epochs[0]["test_samples"], 64);
  EXPECT_EQ(m.final_metrics["epoch"], 1);
  EXPECT_GT(m.train_seconds, 0.0);
  EXPECT_EQ(m.model_sha256.size(), 64u);
  EXPECT_EQ(m.model, "fmnist-resnet");
  EXPECT_EQ(m.version, "model_v20261206_205555");
  EXPECT_FALSE(m.created.empty());
  EXPECT_TRUE(m.extra.empty()) << m.extra.dump();
}

// Every field of a version 1 manifest has its place in the struct: written back, the document
// is the same but for schema_version.
TEST(Manifest, Version1RoundTripsAsVersion2) {
  const json v1 = v1_document();
  json written = Manifest::from_json(v1, "v1").to_json();
  EXPECT_EQ(written["schema_version"], Manifest::kSchemaVersion);
  written.erase("schema_version");
  EXPECT_EQ(written, v1);

  const json v2 = Manifest::from_json(v1, "v1").to_json();
  const Manifest again = Manifest::from_json(v2, "v2");
  EXPECT_EQ(again.schema_version, 2);
  EXPECT_EQ(again.to_json(), v2);
}

TEST(Manifest, UnknownKeysSurvive) {
  json doc = v1_document();
  doc["schema_version"] = 2;
  doc["signed_by"] = {{"key", "k1"}};
  doc["dataset"]["license"] = "CC-BY";
  const Manifest m = Manifest::from_json(doc, "x");
  EXPECT_EQ(m.extra, json({{"signed_by", {{"key", "k1"}}}, {"dataset", {{"license", "CC-BY"}}}}));
  EXPECT_EQ(m.to_json(), doc);
}

TEST(Manifest, LaterSchemaVersionsAreRejected) {
  json doc = v1_document();
  doc["schema_version"] = Manifest::kSchemaVersion + 1;
  expect_data_error([&] { Manifest::from_json(doc, "models/m/model_v1/manifest.json"); },
                    {"models/m/model_v1/manifest.json", "schema_version 3"});
  doc["schema_version"] = "2";
  expect_data_error([&] { Manifest::from_json(doc, "where"); }, {"where", "schema_version"});
}

TEST(Manifest, MissingRequiredFieldsAreNamed) {
  for (const char* field :
       {"/dataset/classes", "/dataset/channels", "/dataset/height", "/dataset/width",
        "/dataset/mean", "/dataset/std", "/model_spec/arch", "/model_spec/in_channels",
        "/model_spec/num_classes", "/model_spec/width", "/preprocess/normalize"}) {
    json doc = v1_document();
    const json::json_pointer p(field);
    doc[p.parent_pointer()].erase(p.back());
    std::string dotted = std::string(field).substr(1);
    dotted[dotted.find('/')] = '.';
    expect_data_error([&] { Manifest::from_json(doc, "models/m/v/manifest.json"); },
                      {"models/m/v/manifest.json is incomplete", dotted});
  }
  json doc = v1_document();
  doc.erase("model_spec");
  expect_data_error([&] { Manifest::from_json(doc, "w"); }, {"w is incomplete", "model_spec."});
}

TEST(Manifest, OptionalFieldsDefault) {
  json doc = v1_document();
  doc["preprocess"].erase("channels_last");
  for (const char* key : {"lineage", "final", "epochs", "run_id", "model_sha256", "created"}) {
    doc.erase(key);
  }
  const Manifest m = Manifest::from_json(doc, "x");
  EXPECT_FALSE(m.preprocess.channels_last);
  EXPECT_EQ(m.lineage.resumed_from, "");
  EXPECT_TRUE(m.final_metrics.empty());
  EXPECT_TRUE(m.epochs.empty());
  EXPECT_EQ(m.run_id, "");
}

TEST(Manifest, WrongTypesAreNamed) {
  json doc = v1_document();
  doc["dataset"]["height"] = "eight";
  expect_data_error([&] { Manifest::from_json(doc, "x"); }, {"x", "dataset.height"});
  doc = v1_document();
  doc["preprocess"] = "normalize";
  expect_data_error([&] { Manifest::from_json(doc, "x"); }, {"x", "preprocess"});
  expect_data_error([&] { Manifest::from_json(json::array(), "x"); }, {"x", "JSON object"});
}

TEST(Manifest, RegistryPublishesAndReadsTyped) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  Manifest m = Manifest::from_json(v1_document(), "v1");
  m.run_id = "run-7";
  const std::string v = reg.publish("typed", {{"model.pt", "w"}}, m);
  const Manifest read = reg.manifest("typed", v);
  EXPECT_EQ(read.schema_version, Manifest::kSchemaVersion);
  EXPECT_EQ(read.model, "typed");
  EXPECT_EQ(read.version, v);
  EXPECT_NE(read.created, m.created);
  EXPECT_EQ(read.run_id, "run-7");
  EXPECT_EQ(read.dataset.mean, m.dataset.mean);
  EXPECT_EQ(read.epochs, m.epochs);
  // The raw document is what was stored.
  const json raw = reg.manifest_json("typed", v);
  EXPECT_EQ(raw["schema_version"], Manifest::kSchemaVersion);
  EXPECT_EQ(raw, read.to_json());

  // A stored manifest the build cannot use names its key.
  reg.publish("broken", {{"model.pt", "w"}}, json{{"dataset", {{"classes", {"a"}}}}});
  const std::string b = reg.resolve("broken", "latest");
  expect_data_error([&] { reg.manifest("broken", b); },
                    {"models/broken/" + b + "/manifest.json is incomplete", "dataset."});
}

}  // namespace
}  // namespace ddpipe::registry
