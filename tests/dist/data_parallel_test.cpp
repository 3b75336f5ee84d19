// DDP equivalence: world size 2 on batches A and B equals world size 1 on A ∪ B.
#include "dist/data_parallel.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "core/error.h"
#include "dist/communicator.h"
#include "dist/launcher.h"
#include "model/model.h"

namespace ddpipe::dist {
namespace {

// A model without batch-norm: per-sample gradients average exactly.
struct MlpImpl : torch::nn::Module {
  MlpImpl() : conv(torch::nn::Conv2dOptions(1, 4, 3)), fc1(4 * 6 * 6, 32), fc2(32, 10) {
    register_module("conv", conv);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(conv(x)).flatten(1);
    return fc2(torch::relu(fc1(x)));
  }
  torch::nn::Conv2d conv;
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(Mlp);

std::vector<torch::Tensor> params_of(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

double max_rel_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = (a[i] - b[i]).abs().max().item<double>();
    double s = std::max(1e-12, b[i].abs().max().item<double>());
    worst = std::max(worst, d / s);
  }
  return worst;
}

// Runs `body(rank, comm)` on two threads that form a real Gloo group over loopback.
template <typename F>
void with_two_ranks(F body) {
  int64_t port = free_port("127.0.0.1");
  std::vector<std::thread> threads;
  std::vector<std::string> errors(2);
  for (int64_t r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        WorldInfo w{r, 2, r, 2, "127.0.0.1", port};
        Communicator comm(w, std::chrono::seconds(60));
        body(r, comm);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) EXPECT_EQ(e, "");
}

void sgd_step(torch::nn::Module& m, double lr) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) {
    p.sub_(p.grad() * lr);
    p.mutable_grad().zero_();
  }
}

TEST(DataParallel, TwoRanksEqualOneRankOnTheUnion) {
  torch::manual_seed(0);
  auto a = torch::randn({8, 1, 8, 8}), b = torch::randn({8, 1, 8, 8});
  auto ya = torch::randint(0, 10, {8}), yb = torch::randint(0, 10, {8});
  torch::manual_seed(1);
  Mlp reference;
  auto init = model::save_state(*reference);

  // World size 1 on A ∪ B.
  auto loss = torch::nn::functional::cross_entropy(reference->forward(torch::cat({a, b})),
                                                   torch::cat({ya, yb}));
  loss.backward();
  sgd_step(*reference, 0.1);
  auto expected = params_of(*reference);

  std::vector<std::vector<torch::Tensor>> got(2);
  with_two_ranks([&](int64_t r, Communicator& comm) {
    Mlp m;
    model::load_state(*m, init, "init");
    DataParallel ddp(comm, *m, 0.0001);  // tiny buckets: several allreduces in flight
    EXPECT_GT(ddp.num_buckets(), 1);
    auto x = r == 0 ? a : b;
    auto y = r == 0 ? ya : yb;
    ddp.begin_backward(true);
    torch::nn::functional::cross_entropy(m->forward(x), y).backward();
    ddp.finish_gradients();
    sgd_step(*m, 0.1);
    got[r] = params_of(*m);
  });
  ASSERT_EQ(got[0].size(), expected.size());
  EXPECT_LT(max_rel_diff(got[0], expected), 1e-5);
  EXPECT_LT(max_rel_diff(got[1], expected), 1e-5);
}

TEST(DataParallel, AccumulationCommunicatesOnceAndMatches) {
  torch::manual_seed(2);
  std::vector<torch::Tensor> xs, ys;
  for (int i = 0; i < 4; ++i) {
    xs.push_back(torch::randn({4, 1, 8, 8}));
    ys.push_back(torch::randint(0, 10, {4}));
  }
  Mlp reference;
  auto init = model::save_state(*reference);
  torch::nn::functional::cross_entropy(reference->forward(torch::cat(xs)), torch::cat(ys))
      .backward();
  sgd_step(*reference, 0.1);
  auto expected = params_of(*reference);

  std::vector<std::vector<torch::Tensor>> got(2);
  with_two_ranks([&](int64_t r, Communicator& comm) {
    Mlp m;
    model::load_state(*m, init, "init");
    DataParallel ddp(comm, *m, 1.0);
    for (int micro = 0; micro < 2; ++micro) {
      bool sync = micro == 1;
      ddp.begin_backward(sync);
      (torch::nn::functional::cross_entropy(m->forward(xs[2 * r + micro]), ys[2 * r + micro]) / 2.0)
          .backward();
      if (sync) ddp.finish_gradients();
    }
    sgd_step(*m, 0.1);
    got[r] = params_of(*m);
  });
  EXPECT_LT(max_rel_diff(got[0], expected), 1e-5);
  EXPECT_LT(max_rel_diff(got[1], expected), 1e-5);
}

TEST(DataParallel, RanksStayIdenticalWithBatchNormOverManySteps) {
  std::vector<std::vector<torch::Tensor>> state(2);
  with_two_ranks([&](int64_t r, Communicator& comm) {
    torch::manual_seed(100 + r);  // different init per rank: the broadcast must fix it
    auto net = model::make_model({"resnet-mini", 1, 10, 4});
    DataParallel ddp(comm, *net, 0.01);
    torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    net->train();
    for (int step = 0; step < 5; ++step) {
      auto x = torch::randn({6, 1, 12, 12});  // different data per rank
      auto y = torch::randint(0, 10, {6});
      ddp.sync_buffers();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
      ddp.begin_backward(true);
      loss.backward();
      ddp.finish_gradients();
      opt.step();
      ddp.zero_grad();
    }
    ddp.sync_buffers();
    for (auto& p : net->parameters()) state[r].push_back(p.detach().clone());
    for (auto& b : net->buffers()) state[r].push_back(b.detach().clone());
  });
  ASSERT_EQ(state[0].size(), state[1].size());
  for (size_t i = 0; i < state[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(state[0][i], state[1][i])) << "tensor " << i << " differs";
  }
}

TEST(Communicator, LostPeerTimesOutWithRetryableError) {
  int64_t port = free_port("127.0.0.1");
  // Rank 1 never shows up: the rendezvous must fail within the timeout, not hang.
  WorldInfo w{0, 2, 0, 2, "127.0.0.1", port};
  auto t0 = std::chrono::steady_clock::now();
  try {
    Communicator comm(w, std::chrono::milliseconds(1500));
    FAIL() << "rendezvous succeeded without a peer";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kRetryable);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

}  // namespace
}  // namespace ddpipe::dist
