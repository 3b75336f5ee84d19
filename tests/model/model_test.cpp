#include "model/model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"

namespace ddpipe::model {
namespace {

TEST(Model, Resnet18HasTorchvisionSizeAndNames) {
  auto net = make_model({"resnet18", 3, 10, 0});
  EXPECT_EQ(parameter_count(*net), 11181642);  // torchvision resnet18(num_classes=10)
  auto names = net->named_parameters().keys();
  EXPECT_NE(std::find(names.begin(), names.end(), "layer2.0.downsample.0.weight"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "fc.bias"), names.end());
  auto out = net->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(Model, CifarAndMiniShapes) {
  auto cifar = make_model({"resnet18-cifar", 3, 10, 0});
  EXPECT_EQ(cifar->named_parameters()["conv1.weight"].sizes(), (std::vector<int64_t>{64, 3, 3, 3}));
  EXPECT_EQ(cifar->forward(torch::randn({1, 3, 32, 32})).sizes(), (std::vector<int64_t>{1, 10}));
  auto mini = make_model({"resnet-mini", 1, 7, 16});
  EXPECT_EQ(mini->forward(torch::randn({4, 1, 28, 28})).sizes(), (std::vector<int64_t>{4, 7}));
  EXPECT_LT(parameter_count(*mini), 200000);
}

TEST(Model, SameSeedSameWeights) {
  torch::manual_seed(3);
  auto a = make_model({"resnet-mini", 1, 10, 8});
  torch::manual_seed(3);
  auto b = make_model({"resnet-mini", 1, 10, 8});
  for (auto& p : a->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()])) << p.key();
  }
}

TEST(Model, StateRoundTripAndMismatch) {
  auto a = make_model({"resnet-mini", 1, 10, 8});
  auto b = make_model({"resnet-mini", 1, 10, 8});
  load_state(*b, save_state(*a), "a/model.pt");
  for (auto& p : a->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()]));
  }
  auto wide = make_model({"resnet-mini", 1, 10, 16});
  try {
    load_state(*wide, save_state(*a), "a/model.pt");
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find("conv1.weight"), std::string::npos) << e.what();
  }
  try {
    load_state(*a, "not an archive", "x/model.pt");
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find("x/model.pt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_model({"vgg", 3, 10, 0}), core::Error);
  for (const auto& arch : architectures()) EXPECT_NO_THROW(make_model({arch, 3, 10, 8})) << arch;
  EXPECT_THROW(make_model({"resnet18", 2, 10, 0}), core::Error);
}

TEST(Model, ConfigValidationAsksTheModelComponentForArchitectures) {
  EXPECT_EQ(architectures(),
            (std::vector<std::string>{"resnet-mini", "resnet18", "resnet18-cifar"}));
  EXPECT_EQ(core::config_from_yaml("model:\n  arch: resnet18\n", {}, config_choices()).model.arch,
            "resnet18");
  try {
    core::config_from_yaml("model:\n  arch: vgg\n", {}, config_choices());
    ADD_FAILURE() << "vgg accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "model.arch: must be one of resnet-mini, resnet18, resnet18-cifar, got 'vgg'"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ddpipe::model
