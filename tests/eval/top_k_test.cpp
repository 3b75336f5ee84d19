#include "eval/top_k.h"

#include <gtest/gtest.h>

#include <numeric>

namespace ddpipe::eval {
namespace {

using Indices = std::vector<int64_t>;

TEST(TopK, DescendingProbability) {
  const std::vector<float> p = {0.1f, 0.5f, 0.05f, 0.3f, 0.05f};
  EXPECT_EQ(top_k(p, 1), Indices({1}));
  EXPECT_EQ(top_k(p, 3), Indices({1, 3, 0}));
}

TEST(TopK, TiesInAscendingIndexOrder) {
  const std::vector<float> p = {0.2f, 0.1f, 0.2f, 0.1f, 0.2f, 0.2f};
  EXPECT_EQ(top_k(p, 6), Indices({0, 2, 4, 5, 1, 3}));
  EXPECT_EQ(top_k(p, 2), Indices({0, 2}));
  EXPECT_EQ(top_k(p, 5), Indices({0, 2, 4, 5, 1}));
  // Many equal values (where an unstable sort reorders them): still index order.
  const std::vector<float> flat(1000, 0.001f);
  Indices all(flat.size());
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(top_k(flat, 1000), all);
  EXPECT_EQ(top_k(flat, 3), Indices({0, 1, 2}));
  std::vector<float> one_high(1000, 0.0f);
  one_high[777] = 1.0f;
  EXPECT_EQ(top_k(one_high, 3), Indices({777, 0, 1}));
}

TEST(TopK, KBeyondTheClassesOrNotPositive) {
  const std::vector<float> p = {0.25f, 0.75f};
  EXPECT_EQ(top_k(p, 2), Indices({1, 0}));
  EXPECT_EQ(top_k(p, 100000), Indices({1, 0}));
  EXPECT_EQ(top_k(p, 0), Indices());
  EXPECT_EQ(top_k(p, -3), Indices());
  EXPECT_EQ(top_k({}, 5), Indices());
}

}  // namespace
}  // namespace ddpipe::eval
