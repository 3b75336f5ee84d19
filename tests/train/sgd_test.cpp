#include "train/sgd.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

namespace ddpipe::train {
namespace {

std::vector<torch::Tensor> make_params(bool channels_last) {
  torch::manual_seed(5);
  std::vector<torch::Tensor> ps = {torch::randn({8, 4, 3, 3}), torch::randn({8}),
                                   torch::randn({10, 8})};
  if (channels_last) ps[0] = ps[0].contiguous(at::MemoryFormat::ChannelsLast);
  for (auto& p : ps) p.requires_grad_();
  return ps;
}

void set_grads(std::vector<torch::Tensor>& ps, int step) {
  torch::manual_seed(100 + step);
  for (auto& p : ps) p.mutable_grad() = torch::randn_like(p);
}

// Same trajectory as torch::optim::SGD for every option combination, over several steps.
TEST(FusedSGD, MatchesTorchSGD) {
  struct Case {
    double momentum, dampening, weight_decay;
    bool nesterov, channels_last;
  };
  for (const Case& c : std::vector<Case>{{0.9, 0, 5e-4, false, false},
                                         {0.9, 0, 5e-4, true, true},
                                         {0.8, 0.1, 0, false, true},
                                         {0, 0, 1e-3, false, false}}) {
    SCOPED_TRACE("momentum " + std::to_string(c.momentum) + " nesterov " +
                 std::to_string(c.nesterov));
    auto opts = torch::optim::SGDOptions(0.05)
                    .momentum(c.momentum)
                    .dampening(c.dampening)
                    .weight_decay(c.weight_decay)
                    .nesterov(c.nesterov);
    auto a = make_params(c.channels_last), b = make_params(c.channels_last);
    torch::optim::SGD ref(a, opts);
    FusedSGD fused(b, opts);
    for (int step = 0; step < 4; ++step) {
      set_grads(a, step);
      set_grads(b, step);
      ref.step();
      fused.step();
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-6, 1e-7))
            << "parameter " << i << " step " << step << " max diff "
            << (a[i] - b[i]).abs().max().item<double>();
      }
    }
  }
}

// optimizer.pt written by one loads into the other and the runs continue identically.
TEST(FusedSGD, StateIsInterchangeableWithTorchSGD) {
  auto opts = torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-4);
  auto a = make_params(false), b = make_params(false);
  torch::optim::SGD ref(a, opts);
  FusedSGD fused(b, opts);
  set_grads(a, 0);
  set_grads(b, 0);
  ref.step();
  fused.step();
  std::ostringstream out;
  torch::serialize::OutputArchive archive;
  fused.save(archive);
  archive.save_to(out);
  auto c = make_params(false);
  {
    torch::NoGradGuard g;
    for (size_t i = 0; i < c.size(); ++i) c[i].copy_(b[i]);
  }
  torch::optim::SGD restored(c, opts);
  torch::serialize::InputArchive in;
  std::istringstream is(out.str());
  in.load_from(is);
  restored.load(in);
  set_grads(a, 1);
  set_grads(c, 1);
  ref.step();
  restored.step();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::allclose(a[i], c[i], 1e-6, 1e-7));
}

}  // namespace
}  // namespace ddpipe::train
