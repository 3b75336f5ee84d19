#include "model/linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ddpipe::model {
namespace {

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

TEST(Linear, MatchesTorchLinearWithAndWithoutBias) {
  torch::manual_seed(1);
  for (bool bias : {false, true}) {
    auto x = torch::randn({7, 33}), w = torch::randn({5, 33}), b = torch::randn({5});
    auto x1 = x.clone().requires_grad_(), w1 = w.clone().requires_grad_(),
         b1 = b.clone().requires_grad_();
    auto x2 = x.clone().requires_grad_(), w2 = w.clone().requires_grad_(),
         b2 = b.clone().requires_grad_();
    auto ref = torch::linear(x1, w1, bias ? b1 : torch::Tensor());
    auto out = model::linear(x2, w2, bias ? b2 : torch::Tensor());
    EXPECT_LT(rel_err(out, ref), 1e-6);
    auto g = torch::randn(ref.sizes());
    ref.backward(g);
    out.backward(g);
    EXPECT_LT(rel_err(x2.grad(), x1.grad()), 1e-6);
    EXPECT_LT(rel_err(w2.grad(), w1.grad()), 1e-6);
    if (bias) EXPECT_LT(rel_err(b2.grad(), b1.grad()), 1e-6);
  }
  // Non-contiguous input (a transposed view) and bf16 fall back or copy correctly.
  auto xt = torch::randn({33, 7}).t();
  auto w = torch::randn({5, 33});
  EXPECT_LT(rel_err(model::linear(xt, w), torch::linear(xt, w)), 1e-6);
  auto xb = torch::randn({4, 8}).to(torch::kBFloat16),
       wb = torch::randn({3, 8}).to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(model::linear(xb, wb), torch::linear(xb, wb)));
}

TEST(Linear, WithoutAutogradEachRowIsIndependentOfItsBatch) {
  torch::manual_seed(2);
  auto w = torch::randn({300, 700});
  auto row = torch::randn({1, 700});
  torch::NoGradGuard no_grad;
  auto alone = model::linear(row, w);
  for (int64_t n : {2, 5, 64}) {
    auto batch = torch::cat({torch::randn({n - 1, 700}), row});
    EXPECT_TRUE(torch::equal(model::linear(batch, w)[n - 1], alone[0])) << "batch of " << n;
  }
}

}  // namespace
}  // namespace ddpipe::model
