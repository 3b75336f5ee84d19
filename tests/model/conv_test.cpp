#include "model/conv.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <utility>

#include "model/model.h"
#include "model/winograd.h"

namespace ddpipe::model {
namespace {

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

struct Shape {
  int64_t c, k, size, kernel, stride, pad;
  bool channels_last;
};

struct Grads {
  torch::Tensor x, w;
};

// conv2d against torch::conv2d on x and w: output, then both gradients for one random upstream
// gradient, each within `tol` (relative to the largest reference value). Returns conv2d's and
// the reference's gradients.
std::pair<Grads, Grads> compare_with_torch(const torch::Tensor& x, const torch::Tensor& w,
                                           int64_t stride, int64_t pad, double tol) {
  auto x1 = x.clone().requires_grad_(), w1 = w.clone().requires_grad_();
  auto x2 = x.clone().requires_grad_(), w2 = w.clone().requires_grad_();
  auto ref = torch::conv2d(x1, w1, {}, stride, pad);
  auto out = conv2d(x2, w2, stride, pad);
  EXPECT_EQ(out.sizes(), ref.sizes());
  EXPECT_LT(rel_err(out, ref), tol);
  auto g = torch::randn(ref.sizes());
  ref.backward(g);
  out.backward(g);
  EXPECT_LT(rel_err(x2.grad(), x1.grad()), tol);
  EXPECT_LT(rel_err(w2.grad(), w1.grad()), tol);
  return {{x2.grad(), w2.grad()}, {x1.grad(), w1.grad()}};
}

// Output and both gradients against torch::conv2d, for the specialised shapes and a few that
// must fall through to it.
TEST(Conv, MatchesTorchConv2dForwardAndBackward) {
  torch::manual_seed(0);
  const std::vector<Shape> shapes = {
      {64, 96, 1, 3, 1, 1, true},  {64, 96, 1, 3, 1, 1, false}, {32, 48, 1, 3, 2, 1, true},
      {32, 48, 2, 3, 2, 1, true},  {32, 48, 2, 3, 2, 1, false}, {40, 24, 2, 3, 1, 1, true},
      {40, 24, 2, 3, 1, 1, false}, {16, 32, 2, 1, 2, 0, true},  {16, 32, 1, 1, 1, 0, false},
      {16, 16, 4, 3, 1, 1, true},  {16, 16, 3, 3, 2, 1, true},  {3, 8, 7, 7, 2, 3, false},
  };
  for (const auto& s : shapes) {
    SCOPED_TRACE("C=" + std::to_string(s.c) + " K=" + std::to_string(s.k) +
                 " HxW=" + std::to_string(s.size) + " kernel=" + std::to_string(s.kernel) +
                 " stride=" + std::to_string(s.stride) + (s.channels_last ? " channels-last" : ""));
    auto x = torch::randn({5, s.c, s.size, s.size});
    auto w = torch::randn({s.k, s.c, s.kernel, s.kernel}) * 0.1;
    if (s.channels_last) {
      x = x.contiguous(at::MemoryFormat::ChannelsLast);
      w = w.contiguous(at::MemoryFormat::ChannelsLast);
    }
    auto [got, want] = compare_with_torch(x, w, s.stride, s.pad, 1e-5);
    // Taps that only ever see padding get exactly zero gradient, as in the padded convolution.
    EXPECT_EQ(got.w.eq(0).sum().item<int64_t>(), want.w.eq(0).sum().item<int64_t>());
  }
}

// Shapes that take oneDNN's Winograd kernels (stride 1, channels multiples of 16), in both
// memory formats and with odd map sizes; the transforms round differently from direct
// convolution, hence the looser bound.
TEST(Conv, WinogradMatchesTorchConv2d) {
  torch::manual_seed(1);
  struct W {
    int64_t n, c, k, h, w;
    bool channels_last;
  };
  for (const W& s : std::vector<W>{{4, 32, 48, 8, 8, true},
                                   {3, 64, 32, 9, 7, false},
                                   {2, 64, 64, 16, 16, true},
                                   {5, 32, 32, 4, 4, false},
                                   {70, 32, 32, 5, 5, true}}) {
    SCOPED_TRACE("N=" + std::to_string(s.n) + " C=" + std::to_string(s.c) +
                 " K=" + std::to_string(s.k) + " " + std::to_string(s.h) + "x" +
                 std::to_string(s.w) + (s.channels_last ? " channels-last" : ""));
    auto x = torch::randn({s.n, s.c, s.h, s.w});
    auto w = torch::randn({s.k, s.c, 3, 3}) * 0.1;
    if (s.channels_last) {
      x = x.contiguous(at::MemoryFormat::ChannelsLast);
      w = w.contiguous(at::MemoryFormat::ChannelsLast);
    }
    ASSERT_TRUE(winograd_applies(x, w, 1, 1));
    compare_with_torch(x, w, 1, 1, 1e-4);
  }
  // Not Winograd: stride 2, 16 channels, channel counts that are not multiples of 16, bf16.
  auto x = torch::randn({2, 32, 8, 8});
  auto w = torch::randn({32, 32, 3, 3});
  EXPECT_FALSE(winograd_applies(x, w, 2, 1));
  EXPECT_FALSE(winograd_applies(torch::randn({2, 16, 8, 8}), torch::randn({32, 16, 3, 3}), 1, 1));
  EXPECT_FALSE(winograd_applies(torch::randn({2, 40, 8, 8}), torch::randn({32, 40, 3, 3}), 1, 1));
  EXPECT_FALSE(winograd_applies(x.to(torch::kBFloat16), w.to(torch::kBFloat16), 1, 1));
  // The switch.
  set_winograd(false);
  EXPECT_FALSE(winograd_applies(x, w, 1, 1));
  set_winograd(true);
}

TEST(Conv, ModuleKeepsConv2dParameterNameAndShape) {
  Conv c(8, 16, 3, 1, 1);
  auto params = c->named_parameters();
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params.begin()->key(), "weight");
  EXPECT_EQ(params.begin()->value().sizes(), (std::vector<int64_t>{16, 8, 3, 3}));
  EXPECT_EQ(c->forward(torch::randn({2, 8, 6, 6})).sizes(), (std::vector<int64_t>{2, 16, 6, 6}));
}

}  // namespace
}  // namespace ddpipe::model

namespace ddpipe::model {
namespace {

// Whole networks: logits and every gradient agree with and without Winograd.
TEST(Conv, WinogradLeavesNetworksUnchanged) {
  for (const auto& [arch, channels, size, width] :
       std::vector<std::tuple<std::string, int64_t, int64_t, int64_t>>{{"resnet-mini", 1, 28, 32},
                                                                       {"resnet18", 3, 32, 0}}) {
    SCOPED_TRACE(arch);
    torch::manual_seed(7);
    auto net = make_model({arch, channels, 10, width});
    net->train();
    auto x = torch::randn({6, channels, size, size}).contiguous(at::MemoryFormat::ChannelsLast);
    for (auto& p : net->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
    auto run = [&](bool winograd) {
      set_winograd(winograd);
      net->zero_grad();
      auto logits = net->forward(x);
      logits.pow(2).sum().backward();
      std::vector<torch::Tensor> out{logits.detach().clone()};
      for (auto& p : net->parameters()) out.push_back(p.grad().clone());
      set_winograd(true);
      return out;
    };
    auto direct = run(false), wino = run(true);
    for (size_t i = 0; i < direct.size(); ++i) {
      EXPECT_LT(rel_err(wino[i], direct[i]), 1e-3) << (i == 0 ? "logits" : "gradient ") << i;
    }
  }
}

}  // namespace
}  // namespace ddpipe::model

namespace ddpipe::model {
namespace {

// Inference (no autograd) gives an input the same bits whatever else is in its batch: the
// inference service batches requests and promises results equal to unbatched ones.
TEST(Conv, InferenceIsBatchInvariant) {
  torch::manual_seed(9);
  auto net = make_model({"resnet18", 1, 10, 0});  // 28×28: layer3/4 on 2×2 and 1×1 maps
  net->eval();
  auto a = torch::randn({1, 1, 28, 28});
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(winograd_applies(torch::randn({2, 32, 8, 8}), torch::randn({32, 32, 3, 3}), 1, 1));
  auto alone = net->forward(torch::cat({a, a}))[0];
  for (int64_t n : {3, 8, 17}) {
    auto batch = torch::cat({torch::randn({n - 1, 1, 28, 28}), a});
    EXPECT_TRUE(torch::equal(net->forward(batch)[n - 1], alone)) << "batch of " << n;
  }
}

}  // namespace
}  // namespace ddpipe::model
