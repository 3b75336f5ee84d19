// Gradient compression's arithmetic on one rank (no network): PowerSGD's approximation and error
// feedback, its state file, and the mode names. tests/dist/data_parallel_test.cpp runs the modes
// over real Gloo groups.
#include "dist/grad_compression.h"

#include <gtest/gtest.h>
#include <torch/serialize/output-archive.h>
#include <torch/torch.h>

#include <sstream>

#include "core/error.h"

namespace ddpipe::dist {
namespace {

Communicator& one_rank() {
  static Communicator comm(WorldInfo{0, 1, 0, 1, "127.0.0.1", 0}, std::chrono::seconds(5));
  return comm;
}

// One bucket: a 12 × 20 matrix, then a bias of 12.
std::vector<BucketLayout> matrix_and_bias() { return {{{0, {12, 20}}, {240, {12}}}}; }

CompressionOptions powersgd(int64_t rank) {
  return {GradCompression::kPowerSgd, rank, /*start_step=*/0, /*seed=*/7};
}

TEST(PowerSgd, ReconstructsAGradientOfRankAtMostR) {
  auto reducer = make_bucket_reducer(powersgd(2), one_rank(), matrix_and_bias());
  torch::manual_seed(0);
  auto m = torch::mm(torch::randn({12, 2}), torch::randn({2, 20}));  // rank 2
  auto flat = torch::cat({m.flatten(), torch::randn({12})});
  auto input = flat.clone();
  reducer->reduce(0, flat);
  EXPECT_TRUE(torch::allclose(flat, input, 1e-4, 1e-5)) << (flat - input).abs().max();
}

TEST(PowerSgd, ErrorFeedbackCarriesWhatTheApproximationLeftOut) {
  auto reducer = make_bucket_reducer(powersgd(1), one_rank(), matrix_and_bias());
  torch::manual_seed(1);
  auto g1 = torch::randn({252}), g2 = torch::randn({252});
  auto step1 = g1.clone();
  reducer->reduce(0, step1);
  reducer->step_done();
  const auto left_out = g1 - step1;  // rank 1 of a rank-12 matrix: much is left out
  EXPECT_GT(left_out.slice(0, 0, 240).norm().item<double>(), 0.1);
  EXPECT_TRUE(torch::equal(step1.slice(0, 240), g1.slice(0, 240)));  // the bias is not compressed
  // What step 2 approximates is its own gradient plus step 1's remainder: over both steps the
  // applied sum differs from the true sum only by step 2's remainder, which is again orthogonal
  // to the approximation (P Pᵀ (g2 + e) is a projection).
  auto step2 = g2.clone();
  reducer->reduce(0, step2);
  auto m2 = (g2 + left_out).slice(0, 0, 240).view({12, 20});
  auto a2 = step2.slice(0, 0, 240).view({12, 20});
  EXPECT_LT((a2 * (m2 - a2)).sum().abs().item<double>(), 1e-3);
}

TEST(PowerSgd, BeforeTheStartStepItAverages) {
  CompressionOptions o = powersgd(1);
  o.powersgd_start_step = 2;
  auto reducer = make_bucket_reducer(o, one_rank(), matrix_and_bias());
  auto g = torch::randn({252});
  for (int step = 0; step < 2; ++step) {
    auto flat = g.clone();
    reducer->reduce(0, flat);
    reducer->step_done();
    EXPECT_TRUE(torch::equal(flat, g)) << "step " << step;  // one rank: the average is g
  }
  auto flat = g.clone();
  reducer->reduce(0, flat);
  EXPECT_FALSE(torch::equal(flat, g));  // compressed from the start step on
}

TEST(PowerSgd, StateRestoresBitForBit) {
  auto a = make_bucket_reducer(powersgd(1), one_rank(), matrix_and_bias());
  torch::manual_seed(2);
  std::vector<torch::Tensor> grads;
  for (int i = 0; i < 6; ++i) grads.push_back(torch::randn({252}));
  for (int i = 0; i < 3; ++i) {
    auto flat = grads[i].clone();
    a->reduce(0, flat);
    a->step_done();
  }
  const std::string saved = a->state_bytes();
  auto b = make_bucket_reducer(powersgd(1), one_rank(), matrix_and_bias());
  b->load_state(saved, "grad_compression.pt");
  for (int i = 3; i < 6; ++i) {
    auto x = grads[i].clone(), y = grads[i].clone();
    a->reduce(0, x);
    b->reduce(0, y);
    a->step_done();
    b->step_done();
    EXPECT_TRUE(torch::equal(x, y)) << "step " << i;
  }
}

TEST(PowerSgd, AStateOfOtherBucketsIsADataErrorNamingTheFile) {
  auto a = make_bucket_reducer(powersgd(1), one_rank(), matrix_and_bias());
  auto flat = torch::randn({252});
  a->reduce(0, flat);
  const std::string saved = a->state_bytes();
  auto other = make_bucket_reducer(powersgd(1), one_rank(), {{{0, {12, 30}}, {360, {12}}}});
  for (const std::string& bytes : {saved, std::string("not an archive")}) {
    try {
      other->load_state(bytes, "models/m/checkpoints/epoch_1/grad_compression.pt");
      FAIL() << "loaded";
    } catch (const core::Error& e) {
      EXPECT_EQ(e.kind(), core::ErrorKind::kData);
      EXPECT_NE(std::string(e.what()).find("epoch_1/grad_compression.pt"), std::string::npos)
          << e.what();
    }
  }
}

TEST(GradCompression, NamesTheModesItKnows) {
  EXPECT_EQ(grad_compression_from("powersgd"), GradCompression::kPowerSgd);
  EXPECT_EQ(grad_compression_from("bf16"), GradCompression::kBf16);
  try {
    grad_compression_from("zstd");
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("none, bf16, fp16, powersgd"), std::string::npos);
  }
  EXPECT_EQ(make_bucket_reducer({}, one_rank(), matrix_and_bias()), nullptr);
}

}  // namespace
}  // namespace ddpipe::dist
