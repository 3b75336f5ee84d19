#include "core/random.h"

#include <gtest/gtest.h>

#include <vector>

namespace ddpipe::core {
namespace {

// The published values: SplitMix64's first output for seed 0, FNV-1a of "" and "a".
TEST(Random, KnownValues) {
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(fnv1a(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a("a"), 0xaf63dc4c8601ec8cULL);
}

// In range, every value reached, and the same draws from the same seed.
TEST(Random, UniformBelowIsInRangeAndReproducible) {
  std::mt19937_64 a(7), b(7);
  std::vector<int> seen(5, 0);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = uniform_below(a, 5);
    ASSERT_LT(x, 5u);
    ++seen[x];
    EXPECT_EQ(x, uniform_below(b, 5));
  }
  for (int count : seen) EXPECT_GT(count, 150);
}

}  // namespace
}  // namespace ddpipe::core
