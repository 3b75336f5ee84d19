// DDP equivalence: world size 2 on batches A and B equals world size 1 on A ∪ B.
#include "dist/data_parallel.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

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

// Each rank's own gradient of `m` (initialised from `init`) on (x, y).
std::vector<torch::Tensor> local_grads(const std::string& init, const torch::Tensor& x,
                                       const torch::Tensor& y) {
  Mlp m;
  model::load_state(*m, init, "init");
  torch::nn::functional::cross_entropy(m->forward(x), y).backward();
  std::vector<torch::Tensor> out;
  for (auto& p : m->parameters()) out.push_back(p.grad().clone());
  return out;
}

// bf16 and fp16: every gradient is what the 16-bit sum of the two 16-bit shares g/2 gives,
// bit for bit (one addition with two ranks, rounded to nearest even).
void expect_half_average(GradCompression mode, c10::ScalarType dtype) {
  torch::manual_seed(3);
  auto a = torch::randn({8, 1, 8, 8}), b = torch::randn({8, 1, 8, 8});
  auto ya = torch::randint(0, 10, {8}), yb = torch::randint(0, 10, {8});
  Mlp init_model;
  auto init = model::save_state(*init_model);
  auto ga = local_grads(init, a, ya), gb = local_grads(init, b, yb);
  std::vector<std::vector<torch::Tensor>> got(2);
  with_two_ranks([&](int64_t r, Communicator& comm) {
    Mlp m;
    model::load_state(*m, init, "init");
    DataParallel ddp(comm, *m, 0.0001, {mode});
    ddp.begin_backward(true);
    torch::nn::functional::cross_entropy(m->forward(r == 0 ? a : b), r == 0 ? ya : yb).backward();
    ddp.finish_gradients();
    for (auto& p : m->parameters()) got[r].push_back(p.grad().clone());
  });
  ASSERT_EQ(got[0].size(), ga.size());
  for (size_t i = 0; i < ga.size(); ++i) {
    auto share = [&](const torch::Tensor& g) { return g.div(2.0).to(dtype).to(torch::kFloat); };
    auto expected = (share(ga[i]) + share(gb[i])).to(dtype).to(torch::kFloat);
    EXPECT_TRUE(torch::equal(got[0][i], expected)) << "parameter " << i;
    EXPECT_TRUE(torch::equal(got[1][i], expected)) << "parameter " << i;
    // Three roundings (two shares, one sum), each within u = 2^-8 (bf16) or 2^-11 (fp16) of
    // what it rounds, away from the exact average; fp16's subnormals are 2^-24 apart.
    const double u = dtype == torch::kHalf ? 0x1p-11 : 0x1p-8;
    auto bound = (ga[i].abs() + gb[i].abs()) * u + 0x1p-24;
    EXPECT_TRUE(((got[0][i] - (ga[i] + gb[i]) / 2).abs() <= bound).all().item<bool>())
        << "parameter " << i;
  }
}

TEST(DataParallel, Bf16CompressionSumsTheRoundedShares) {
  expect_half_average(GradCompression::kBf16, torch::kBFloat16);
}

TEST(DataParallel, Fp16CompressionSumsTheRoundedShares) {
  expect_half_average(GradCompression::kFp16, torch::kHalf);
}

// Least squares Y = X Wᵀ + c with a full-rank 16 × 32 W: rank-1 PowerSGD with error feedback
// still finds W (each step approximates, the remainder comes back in later steps).
double powersgd_regression_error(int64_t matrix_rank, int steps) {
  torch::manual_seed(4);
  auto w_true = torch::randn({16, 32}), c_true = torch::randn({16});
  std::vector<double> err(2);
  with_two_ranks([&](int64_t r, Communicator& comm) {
    torch::manual_seed(5);
    torch::nn::Linear lin(32, 16);
    DataParallel ddp(comm, *lin, 1.0, {GradCompression::kPowerSgd, matrix_rank, 0, 11});
    torch::optim::SGD opt(lin->parameters(), torch::optim::SGDOptions(0.05));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + r);  // each rank its own data
    for (int step = 0; step < steps; ++step) {
      auto x = at::randn({32, 32}, gen, torch::kFloat);
      auto y = torch::matmul(x, w_true.t()) + c_true;
      ddp.begin_backward(true);
      torch::mse_loss(lin->forward(x), y).backward();
      ddp.finish_gradients();
      opt.step();
      ddp.zero_grad();
    }
    err[r] = ((lin->weight - w_true).norm() / w_true.norm()).item<double>();
  });
  EXPECT_EQ(err[0], err[1]);  // the ranks apply the same update
  return err[0];
}

TEST(DataParallel, PowerSgdConvergesOnLeastSquares) {
  const double start = powersgd_regression_error(1, 0);
  const double rank1 = powersgd_regression_error(1, 1500);
  EXPECT_GT(start, 0.5);
  EXPECT_LT(rank1, 0.02) << "from " << start;
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
