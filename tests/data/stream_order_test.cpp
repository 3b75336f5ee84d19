#include "data/stream_order.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "data/sampler.h"
#include "fixtures.h"

namespace ddpipe::data {
namespace {

using core::ErrorKind;

std::vector<int64_t> iota_of(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

bool is_permutation_of_split(const std::vector<int64_t>& order, int64_t n) {
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  return sorted == iota_of(n);
}

// Uneven shards, one empty: 7 shards, 200 samples.
const std::vector<int64_t> kShards = {30, 25, 0, 40, 35, 31, 39};

TEST(StreamOrder, ShardStartsAndShardOf) {
  const auto starts = shard_starts(kShards);
  EXPECT_EQ(starts, (std::vector<int64_t>{0, 30, 55, 55, 95, 130, 161, 200}));
  EXPECT_EQ(shard_of(starts, 0), 0);
  EXPECT_EQ(shard_of(starts, 29), 0);
  EXPECT_EQ(shard_of(starts, 55), 3);  // shard 2 is empty
  EXPECT_EQ(shard_of(starts, 199), 6);
  EXPECT_TRUE(testing::throws_error([&] { shard_of(starts, 200); }, ErrorKind::kUsage,
                                    {"outside the split"}));
  EXPECT_TRUE(testing::throws_error(
      [] {
        shard_starts({3, -1});
      },
      ErrorKind::kUsage, {"shard 1", "negative"}));
}

TEST(StreamOrder, EverySampleExactlyOnceForAnyBuffer) {
  for (int64_t k : {0, 1, 2, 17, 64, 199, 200, 1000}) {
    for (int64_t epoch : {0, 3}) {
      EXPECT_TRUE(is_permutation_of_split(stream_order(kShards, k, 5, epoch), 200)) << k;
    }
  }
  EXPECT_TRUE(stream_order({}, 10, 5, 0).empty());
  EXPECT_TRUE(stream_order({0, 0}, 10, 5, 0).empty());
}

// Without a buffer: whole shards in the order of torch.randperm(7, Generator(seed + epoch)),
// each in stored order. (The permutation is the one DistributedSampler draws for 7 samples.)
TEST(StreamOrder, WithoutABufferShardsComeWholeInTheSeededPermutation) {
  const auto starts = shard_starts(kShards);
  const auto perm = distributed_sampler_order(7, 1, true, 40, 2, false);
  std::vector<int64_t> expected;
  for (int64_t s : perm) {
    for (int64_t p = starts[static_cast<size_t>(s)]; p < starts[static_cast<size_t>(s) + 1]; ++p)
      expected.push_back(p);
  }
  EXPECT_EQ(stream_order(kShards, 0, 40, 2), expected);
  EXPECT_EQ(stream_order(kShards, 1, 40, 2), expected);
  EXPECT_EQ(stream_order(kShards, 0, 39, 3), expected);  // seed + epoch, as the sampler
  EXPECT_NE(expected, iota_of(200));
}

TEST(StreamOrder, DependsOnlyOnSeedEpochCountsAndBuffer) {
  const auto a = stream_order(kShards, 50, 7, 1);
  EXPECT_EQ(a, stream_order(kShards, 50, 7, 1));
  EXPECT_NE(a, stream_order(kShards, 50, 7, 2));
  EXPECT_NE(a, stream_order(kShards, 50, 8, 1));
  EXPECT_NE(a, stream_order(kShards, 49, 7, 1));
  auto other = kShards;
  std::swap(other[0], other[1]);
  EXPECT_NE(a, stream_order(other, 50, 7, 1));
  // Padded for any world size, the unpadded head is the same order.
  for (int64_t world : {1, 2, 3, 7}) {
    const auto padded = epoch_order(SplitOrder::sharded(kShards, 50), world, 7, 1);
    ASSERT_EQ(padded.size() % static_cast<size_t>(world), 0u);
    EXPECT_EQ(std::vector<int64_t>(padded.begin(), padded.begin() + 200), a) << world;
  }
}

// Padding repeats the head as DistributedSampler does (its unshuffled order is 0..n-1).
TEST(StreamOrder, PadsLikeDistributedSampler) {
  for (int64_t n : {0, 1, 2, 5, 10, 11}) {
    for (int64_t world : {1, 2, 3, 4, 8}) {
      EXPECT_EQ(pad_to_world(iota_of(n), world),
                distributed_sampler_order(n, world, false, 0, 0, false))
          << n << " " << world;
    }
  }
  EXPECT_TRUE(testing::throws_error([] { pad_to_world({1}, 0); }, ErrorKind::kUsage, {"world"}));
}

TEST(StreamOrder, InMemoryFormIsDistributedSamplersOrder) {
  for (int64_t world : {1, 2, 3}) {
    EXPECT_EQ(epoch_order(SplitOrder::in_memory(37), world, 11, 4),
              distributed_sampler_order(37, world, true, 11, 4, false));
  }
  const SplitOrder s = SplitOrder::sharded(kShards, 9);
  EXPECT_EQ(s.size, 200);
  EXPECT_EQ(s.form, SplitOrder::Form::kSharded);
}

// Every output position holds a sample from at most K − 1 positions further in the stream.
TEST(StreamOrder, NoSampleComesOutMoreThanTheBufferAheadOfTheStream) {
  const std::vector<int64_t> shards(40, 50);  // 2000 samples
  for (int64_t k : {2, 10, 100, 700}) {
    const auto stream = stream_order(shards, 0, 3, 0);
    std::vector<int64_t> stream_pos(stream.size());
    for (size_t i = 0; i < stream.size(); ++i) stream_pos[static_cast<size_t>(stream[i])] = i;
    const auto out = stream_order(shards, k, 3, 0);
    int64_t max_early = 0;
    double distance = 0;
    for (size_t t = 0; t < out.size(); ++t) {
      const auto d =
          static_cast<int64_t>(stream_pos[static_cast<size_t>(out[t])]) - static_cast<int64_t>(t);
      max_early = std::max(max_early, d);
      distance += static_cast<double>(std::abs(d));
    }
    EXPECT_LE(max_early, k - 1) << k;
    EXPECT_GE(max_early, k / 2) << k;  // the bound is nearly reached
    // A sample enters the buffer K positions before its stream position and waits there a
    // geometric number of draws of mean K: |displacement| = |wait − K|, about 0.74·K on average
    // (2K/e), far from the split's size as in a full permutation.
    const double mean = distance / static_cast<double>(out.size());
    if (k <= 100) {
      EXPECT_GT(mean, 0.4 * static_cast<double>(k)) << k;
      EXPECT_LT(mean, 1.2 * static_cast<double>(k)) << k;
    }
  }
}

// With a buffer of a few shards the head mixes several shards; a buffer of the whole split is
// a full permutation: the first shard in stream order is spread over the whole epoch.
TEST(StreamOrder, TheBufferMixesShards) {
  const std::vector<int64_t> shards(20, 100);  // 2000 samples
  const auto starts = shard_starts(shards);
  auto shards_in = [&](const std::vector<int64_t>& o, size_t from, size_t to) {
    std::set<int64_t> s;
    for (size_t i = from; i < to; ++i) s.insert(shard_of(starts, o[i]));
    return s.size();
  };
  EXPECT_EQ(shards_in(stream_order(shards, 0, 1, 0), 0, 100), 1u);
  EXPECT_GE(shards_in(stream_order(shards, 300, 1, 0), 0, 100), 3u);
  const auto full = stream_order(shards, 2000, 1, 0);
  EXPECT_GE(shards_in(full, 0, 100), 15u);
  // Adjacent outputs from one shard: ~1 without a buffer, ~1/20 for a full permutation.
  auto same_shard_neighbours = [&](const std::vector<int64_t>& o) {
    int64_t same = 0;
    for (size_t i = 1; i < o.size(); ++i)
      same += shard_of(starts, o[i]) == shard_of(starts, o[i - 1]);
    return static_cast<double>(same) / static_cast<double>(o.size() - 1);
  };
  EXPECT_GT(same_shard_neighbours(stream_order(shards, 0, 1, 0)), 0.99);
  EXPECT_LT(same_shard_neighbours(full), 0.1);
  const double buffered = same_shard_neighbours(stream_order(shards, 300, 1, 0));
  EXPECT_LT(buffered, 0.5);
  EXPECT_GT(buffered, same_shard_neighbours(full));
}

// A full permutation is uniform: over many seeds each sample lands in each of 4 quarters of the
// epoch about equally often.
TEST(StreamOrder, AFullBufferIsAUniformPermutation) {
  const std::vector<int64_t> shards(4, 10);
  std::vector<std::vector<int64_t>> counts(40, std::vector<int64_t>(4, 0));
  const int64_t trials = 2000;
  int64_t first_before_last = 0;  // of shard 0: as often as not
  for (int64_t seed = 0; seed < trials; ++seed) {
    const auto o = stream_order(shards, 40, static_cast<uint64_t>(seed) * 1000, 0);
    std::vector<size_t> at(o.size());
    for (size_t t = 0; t < o.size(); ++t) {
      ++counts[static_cast<size_t>(o[t])][t / 10];
      at[static_cast<size_t>(o[t])] = t;
    }
    first_before_last += at[0] < at[9];
  }
  for (const auto& c : counts) {
    for (int64_t q : c) EXPECT_NEAR(static_cast<double>(q) / trials, 0.25, 0.06);
  }
  EXPECT_NEAR(static_cast<double>(first_before_last) / trials, 0.5, 0.06);
}

// The rank's whole-epoch plan at world size 1: the schedule names each shard once, in first-use
// order, and its steps.
TEST(ShardSchedule, FirstUseOrderAndLastStep) {
  const std::vector<int64_t> shards = {3, 3, 3};
  // Positions 0-2 shard 0, 3-5 shard 1, 6-8 shard 2; steps of 3 from step 4.
  const std::vector<int64_t> idx = {6, 0, 7, 1, 8, 3, 2, 4, 5};
  const auto s = shard_schedule(idx, {3, 3, 3}, 4, shards);
  ASSERT_EQ(s.shards.size(), 3u);
  EXPECT_EQ(s.shards[0].shard, 2);
  EXPECT_EQ(s.shards[0].first_step, 4);
  EXPECT_EQ(s.shards[0].last_step, 5);
  EXPECT_EQ(s.shards[1].shard, 0);
  EXPECT_EQ(s.shards[1].last_step, 6);
  EXPECT_EQ(s.shards[2].shard, 1);
  EXPECT_EQ(s.shards[2].first_step, 5);
  EXPECT_EQ(s.shards[2].samples, 3);
  // Step 4 opens shards 2 and 0 (6 samples); step 5 opens 1 (+3) after 3 trained: 6; step 6: 3.
  EXPECT_EQ(s.held_samples, (std::vector<int64_t>{6, 6, 3}));
  EXPECT_EQ(s.peak_open_shards(), 3);
  EXPECT_EQ(s.peak_held_samples(), 6);
  EXPECT_TRUE(testing::throws_error(
      [&] {
        shard_schedule(idx, {3, 3}, 0, shards);
      },
      ErrorKind::kUsage, {"do not add up"}));
}

}  // namespace
}  // namespace ddpipe::data
