#include "eval/inference.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
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
  nlohmann::json manifest = {
      {"dataset",
       {{"classes", ds.classes},
        {"mean", ds.mean},
        {"std", ds.std},
        {"channels", ds.channels},
        {"height", ds.height},
        {"width", ds.width}}},
      {"model_spec",
       {{"arch", "resnet-mini"},
        {"in_channels", ds.channels},
        {"num_classes", static_cast<int64_t>(ds.classes.size())},
        {"width", 4}}},
      {"preprocess", {{"normalize", true}, {"channels_last", channels_last}}}};
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
