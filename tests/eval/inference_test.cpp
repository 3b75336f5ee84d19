#include "eval/inference.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "data/formats.h"
#include "data/transforms.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::eval {
namespace {

// Publishes an untrained model for `ds` the way the trainer does.
std::string publish(storage::Store& store, const data::Dataset& ds, model::Classifier& net,
                    bool channels_last) {
  registry::Registry reg(store);
  registry::Manifest manifest;
  manifest.dataset.classes = ds.classes;
  manifest.dataset.mean = ds.mean;
  manifest.dataset.std = ds.std;
  manifest.dataset.channels = ds.channels;
  manifest.dataset.height = ds.height;
  manifest.dataset.width = ds.width;
  manifest.model_spec = {"resnet-mini", ds.channels, static_cast<int64_t>(ds.classes.size()), 4};
  manifest.preprocess = {true, channels_last};
  return reg.publish("m", {{"model.pt", model::save_state(net)}}, manifest);
}

TEST(Inference, PredictPreprocessesLikeTraining) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  auto ds = data::make_synthetic("s", 64, 16, 3, 10, 12, 5, 7);
  torch::manual_seed(0);
  auto net = model::make_model({"resnet-mini", 3, 5, 4});
  publish(store, ds, *net, true);
  LoadedModel m = load_model(store, "m", "latest");
  EXPECT_EQ(m.classes, ds.classes);

  // The same test images, as decoded images (H×W×C) and through the training transform.
  std::vector<data::Image> images;
  auto batch = torch::empty({ds.test.size(), 3, 10, 12});
  data::Augment aug;
  aug.normalize = true;
  for (int64_t i = 0; i < ds.test.size(); ++i) {
    data::Image img{3, 10, 12, std::vector<uint8_t>(3 * 10 * 12)};
    const uint8_t* chw = ds.test.images.data() + i * ds.image_bytes();
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < 120; ++p) img.pixels[p * 3 + c] = chw[c * 120 + p];
    images.push_back(img);
    data::transform_image(ds, ds.test, i, aug, false, 0, 0, batch[i].data_ptr<float>());
  }
  auto preds = predict(m, images);
  torch::NoGradGuard g;
  net->eval();
  auto expected = torch::softmax(net->forward(batch), 1);
  ASSERT_EQ(preds.size(), static_cast<size_t>(ds.test.size()));
  for (int64_t i = 0; i < ds.test.size(); ++i) {
    EXPECT_EQ(preds[i].class_index, expected[i].argmax().item<int64_t>());
    EXPECT_NEAR(preds[i].confidence, expected[i].max().item<float>(), 1e-5);
    EXPECT_EQ(preds[i].label, ds.classes[preds[i].class_index]);
  }

  // evaluate() agrees with the same forward pass.
  std::vector<int64_t> idx(ds.test.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  EvalSums s = evaluate(*m.net, ds, ds.test, idx, true, 5, 2, true);
  EXPECT_EQ(s.count, ds.test.size());
  auto labels =
      torch::from_blob(ds.test.labels.data(), {ds.test.size()}, torch::kInt32).to(torch::kLong);
  EXPECT_EQ(s.correct, expected.argmax(1).eq(labels).sum().item<double>());
}

// A model trained from shards (manifest preprocess.center_crop): an image of any size is
// resized by its shorter side and centre-cropped as the sharded test split is in evaluation
// (data::resize_center_crop, the transform ShardSource applies; tests/data/shard_source_test),
// not resized whole.
TEST(Inference, ModelTrainedFromShardsIsCentreCroppedAsInEvaluation) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  auto ds = data::make_synthetic("s", 8, 4, 3, 16, 16, 5, 7);
  ds.mean = {0.485f, 0.456f, 0.406f};
  ds.std = {0.229f, 0.224f, 0.225f};
  auto net = model::make_model({"resnet-mini", 3, 5, 4});
  registry::Registry reg(store);
  registry::Manifest manifest;
  manifest.dataset = {"s", "", ds.classes, 3, 16, 16, ds.mean, ds.std, 8, 4};
  manifest.model_spec = {"resnet-mini", 3, 5, 4};
  manifest.preprocess = {true, false, true, 18};
  reg.publish("m", {{"model.pt", model::save_state(*net)}}, manifest);
  const LoadedModel m = load_model(store, "m", "latest");
  ASSERT_TRUE(m.center_crop);

  data::Image image{3, 23, 41, std::vector<uint8_t>(3 * 23 * 41)};
  for (size_t k = 0; k < image.pixels.size(); ++k) image.pixels[k] = (k * 37 + k / 7) % 251;
  std::vector<float> got(3 * 16 * 16), want(got.size()), whole(got.size());
  preprocess(m, image, got.data());
  const auto chw = data::to_chw(image, 3, 23, 41);
  data::ResizedCrop crop;
  crop.size = 16;
  crop.eval_resize = 18;
  data::resize_center_crop({chw.data(), 3, 23, 41}, crop, want.data());
  EXPECT_EQ(got, want);
  LoadedModel stretched = m;
  stretched.center_crop = false;
  preprocess(stretched, image, whole.data());
  EXPECT_NE(got, whole) << "the centre crop is not the whole image resized";

  manifest.preprocess.resize_shorter = 12;  // smaller than the 16×16 crop
  reg.publish("bad", {{"model.pt", model::save_state(*net)}}, manifest);
  try {
    load_model(store, "bad", "latest");
    ADD_FAILURE() << "a crop larger than the resized image was accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("preprocess.resize_shorter"), std::string::npos)
        << e.what();
  }
}

// A version published before manifests had a schema_version (tests/registry/data: written by
// the trainer of that time, resnet-mini of width 4 on 8×8 RGB images) still loads and predicts.
TEST(Inference, LoadsAVersion1Manifest) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  const std::string data = std::string(DDPIPE_SOURCE_DIR) + "/tests/registry/data/";
  const std::string weights = core::read_file(data + "model_v1.pt");
  const std::string version = "model_v20261206_205555";
  store.put("models/old/" + version + "/model.pt", weights);
  store.put("models/old/" + version + "/manifest.json", core::read_file(data + "manifest_v1.json"));
  registry::Registry(store).set_alias("old", "latest", version);

  LoadedModel m = load_model(store, "old", "latest");
  EXPECT_EQ(m.version, version);
  EXPECT_EQ(m.manifest.schema_version, 1);
  EXPECT_EQ(m.manifest.model_sha256, core::sha256_hex(weights));
  EXPECT_EQ(m.manifest.model_spec.arch, "resnet-mini");
  EXPECT_EQ(m.classes.size(), 10u);
  EXPECT_EQ(m.channels, 3);
  EXPECT_EQ(m.height, 8);
  EXPECT_EQ(m.width, 8);
  EXPECT_EQ(m.mean.size(), 3u);
  EXPECT_TRUE(m.normalize);
  EXPECT_TRUE(m.channels_last);
  EXPECT_TRUE(m.net->parameters()[0].is_contiguous(at::MemoryFormat::ChannelsLast));

  // The weights are the stored ones.
  auto reference = model::make_model({"resnet-mini", 3, 10, 4});
  model::load_state(*reference, weights, "model.pt");
  auto loaded = m.net->named_parameters();
  for (const auto& p : reference->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), loaded[p.key()])) << p.key();
  }
  data::Image img{3, 8, 8, std::vector<uint8_t>(3 * 8 * 8, 128)};
  auto preds = predict(m, {img});
  ASSERT_EQ(preds.size(), 1u);
  EXPECT_EQ(preds[0].probabilities.size(), 10u);
}

// An incomplete manifest fails as a data error naming the manifest and the field.
TEST(Inference, IncompleteManifestNamesTheField) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  registry::Registry reg(store);
  const std::string v =
      reg.publish("m", {{"model.pt", "w"}}, nlohmann::json{{"dataset", {{"classes", {"a", "b"}}}}});
  try {
    load_model(store, "m", "latest");
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find("models/m/" + v + "/manifest.json is incomplete"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("dataset.channels"), std::string::npos) << e.what();
  }
}

TEST(Inference, UnknownModelIsNotFound) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  try {
    load_model(store, "ghost", "latest");
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kNotFound);
  }
}

}  // namespace
}  // namespace ddpipe::eval
