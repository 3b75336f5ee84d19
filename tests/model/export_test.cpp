// State dicts: .pth and safetensors written and read back, and load_state_dict's checks.
// (Python's side of these formats: tests/integration/python_interop_test.cpp.)
#include "model/export.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/model.h"
#include "test_util.h"

namespace ddpipe::model {
namespace {

std::shared_ptr<Classifier> trained_looking(const ModelSpec& spec, uint64_t seed) {
  torch::manual_seed(seed);
  auto net = make_model(spec);
  torch::NoGradGuard no_grad;
  for (auto& b : net->named_buffers()) {
    if (b.value().is_floating_point())
      b.value().uniform_(0.5, 1.5);
    else
      b.value().fill_(7);  // num_batches_tracked
  }
  return net;
}

void expect_same(const StateDict& got, torch::nn::Module& want) {
  StateDict expected = state_dict(want);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, expected[i].first);
    EXPECT_EQ(got[i].second.scalar_type(), expected[i].second.scalar_type()) << got[i].first;
    EXPECT_TRUE(torch::equal(got[i].second, expected[i].second)) << got[i].first;
  }
}

TEST(Export, PthAndSafetensorsRoundTripInModuleOrder) {
  auto net = trained_looking({"resnet-mini", 3, 5, 4}, 1);
  expect_same(read_pth(state_dict_pth(*net), "model.pth"), *net);
  expect_same(read_safetensors(state_dict_safetensors(*net), "model.safetensors"), *net);
  expect_same(read_state_dict(state_dict_pth(*net), "x"), *net);
  expect_same(read_state_dict(state_dict_safetensors(*net), "x"), *net);
}

TEST(Export, ChannelsLastIsSavedInTheStandardLayout) {
  auto net = trained_looking({"resnet-mini", 1, 4, 4}, 2);
  auto reference = trained_looking({"resnet-mini", 1, 4, 4}, 2);
  to_channels_last(*net);
  ASSERT_FALSE(net->named_parameters()["layer1.0.conv1.weight"].is_contiguous());
  for (auto& [name, t] : read_pth(state_dict_pth(*net), "p")) EXPECT_TRUE(t.is_contiguous());
  expect_same(read_safetensors(state_dict_safetensors(*net), "s"), *reference);
  // Loading into a channels-last model keeps its layout.
  load_state_dict(*net, state_dict(*reference), {}, "r");
  EXPECT_TRUE(net->named_parameters()["layer1.0.conv1.weight"].is_contiguous(
      at::MemoryFormat::ChannelsLast));
}

TEST(Export, SafetensorsHeaderIsTheStandardOne) {
  auto net = trained_looking({"resnet-mini", 1, 3, 4}, 3);
  std::string bytes = state_dict_safetensors(*net, {{"arch", "resnet-mini"}});
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["__metadata__"]["arch"], "resnet-mini");
  EXPECT_EQ(header["fc.weight"]["dtype"], "F32");
  EXPECT_EQ(header["fc.weight"]["shape"], nlohmann::json({3, 16}));
  EXPECT_EQ(header["bn1.num_batches_tracked"]["dtype"], "I64");
  const auto& off = header["fc.bias"]["data_offsets"];
  float first;
  std::memcpy(&first, bytes.data() + 8 + n + off[0].get<size_t>(), 4);
  EXPECT_EQ(first, net->named_parameters()["fc.bias"][0].item<float>());
}

std::string data_error(const std::function<void()>& f) {
  return testing::error_of(core::ErrorKind::kData, f);
}

TEST(Export, MismatchesAreAllNamedAndNothingIsCopied) {
  auto source = trained_looking({"resnet-mini", 1, 10, 4}, 4);
  StateDict state = state_dict(*source);
  for (auto& [name, t] : state) {
    if (name == "conv1.weight") name = "stem.weight";  // renamed
  }
  auto target = trained_looking({"resnet-mini", 1, 4, 4}, 5);
  auto before = state_dict(*target);
  std::string m = data_error([&] { load_state_dict(*target, state, {}, "weights.pth"); });
  EXPECT_NE(m.find("weights.pth"), std::string::npos) << m;
  EXPECT_NE(m.find("unexpected tensor 'stem.weight'"), std::string::npos) << m;
  EXPECT_NE(m.find("missing tensor 'conv1.weight'"), std::string::npos) << m;
  EXPECT_NE(m.find("tensor 'fc.weight': shape [10, 16] in the file, the model expects [4, 16]"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("'fc.bias'"), std::string::npos) << m;
  expect_same(before, *target);  // unchanged
}

TEST(Export, SkippedPrefixesStayAsInitialised) {
  auto source = trained_looking({"resnet-mini", 1, 10, 4}, 6);
  auto target = trained_looking({"resnet-mini", 1, 4, 4}, 7);
  const torch::Tensor fc_before = target->named_parameters()["fc.weight"].clone();
  load_state_dict(*target, state_dict(*source), {"fc"}, "w");
  EXPECT_TRUE(torch::equal(target->named_parameters()["fc.weight"], fc_before));
  EXPECT_TRUE(torch::equal(target->named_parameters()["conv1.weight"],
                           source->named_parameters()["conv1.weight"]));
  // "fc" does not cover "fc2…"-like names, only "fc" and "fc.*".
  EXPECT_NE(data_error([&] {
              load_state_dict(*target, state_dict(*source), {"f"}, "w");
            }).find("fc.weight"),
            std::string::npos);
}

TEST(Export, NumBatchesTrackedMayBeAbsent) {
  auto source = trained_looking({"resnet-mini", 1, 4, 4}, 8);
  StateDict state;
  for (auto& [name, t] : state_dict(*source)) {
    if (name.find("num_batches_tracked") == std::string::npos) state.emplace_back(name, t);
  }
  auto target = trained_looking({"resnet-mini", 1, 4, 4}, 9);
  load_state_dict(*target, state, {}, "old.pth");
  EXPECT_EQ(target->named_buffers()["bn1.num_batches_tracked"].item<int64_t>(), 7);
  EXPECT_TRUE(torch::equal(target->named_buffers()["bn1.running_mean"],
                           source->named_buffers()["bn1.running_mean"]));
}

TEST(Export, CorruptFilesAreDataErrorsNamingTheFile) {
  EXPECT_NE(data_error([] {
              read_state_dict(std::string(64, 'x'), "legacy.pth");
            }).find("legacy.pth: neither a torch.save zip archive"),
            std::string::npos);
  EXPECT_NE(data_error([] { read_safetensors("abc", "x.safetensors"); }).find("x.safetensors"),
            std::string::npos);
  std::string huge(16, '\0');
  huge[0] = 100;
  EXPECT_NE(data_error([&] { read_safetensors(huge, "h"); }).find("header length"),
            std::string::npos);
  std::string bad_offsets = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})";
  uint64_t n = bad_offsets.size();
  std::string file(reinterpret_cast<const char*>(&n), 8);
  file += bad_offsets + std::string(8, '\0');
  EXPECT_NE(data_error([&] { read_safetensors(file, "o"); }).find("'w'"), std::string::npos);
  EXPECT_NE(data_error([] { read_pth("PK not a zip", "p.pth"); }).find("p.pth"), std::string::npos);
}

}  // namespace
}  // namespace ddpipe::model
