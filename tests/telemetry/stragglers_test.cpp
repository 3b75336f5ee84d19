#include "telemetry/stragglers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace ddpipe::telemetry {
namespace {

std::vector<RankTiming> timings(const std::vector<double>& seconds) {
  std::vector<RankTiming> ranks;
  for (size_t r = 0; r < seconds.size(); ++r) {
    ranks.push_back({static_cast<int64_t>(r), "node-" + std::to_string(r), seconds[r]});
  }
  return ranks;
}

// Sums the ranks' encoded slots, as the allreduce does.
std::vector<double> allreduce(const std::vector<std::string>& hosts) {
  const auto n = static_cast<int64_t>(hosts.size());
  std::vector<double> sum(static_cast<size_t>(n * kHostSlotBytes), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    const std::vector<double> slot = encode_host_slot(hosts[r], r, n);
    EXPECT_EQ(slot.size(), sum.size());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += slot[i];
  }
  return sum;
}

TEST(SlowestRank, PicksTheSlowestAndComparesItWithTheMedian) {
  const Straggler s = slowest_rank(timings({1.0, 1.1, 0.9, 2.1}), 1.5);
  EXPECT_EQ(s.rank, 3);
  EXPECT_EQ(s.host, "node-3");
  EXPECT_DOUBLE_EQ(s.step_seconds, 2.1);
  EXPECT_DOUBLE_EQ(s.median_seconds, 1.05);  // even count: the mean of the middle two
  EXPECT_DOUBLE_EQ(s.ratio, 2.0);
  EXPECT_TRUE(s.is_straggler);
  EXPECT_FALSE(slowest_rank(timings({1.0, 1.1, 0.9, 2.1}), 2.0).is_straggler);  // not above 2
  EXPECT_TRUE(slowest_rank(timings({1.0, 1.1, 0.9, 2.1}), 1.99).is_straggler);
}

TEST(SlowestRank, OddCountTakesTheMiddleValue) {
  const Straggler s = slowest_rank(timings({3.0, 1.0, 2.0}), 1.4);
  EXPECT_EQ(s.rank, 0);
  EXPECT_DOUBLE_EQ(s.median_seconds, 2.0);
  EXPECT_DOUBLE_EQ(s.ratio, 1.5);
  EXPECT_TRUE(s.is_straggler);
  EXPECT_FALSE(slowest_rank(timings({3.0, 1.0, 2.0}), 1.5).is_straggler);
}

TEST(SlowestRank, TwoRanksCompareWithTheirMean) {
  const Straggler s = slowest_rank(timings({1.0, 3.0}), 1.2);
  EXPECT_EQ(s.rank, 1);
  EXPECT_DOUBLE_EQ(s.median_seconds, 2.0);
  EXPECT_DOUBLE_EQ(s.ratio, 1.5);
  EXPECT_TRUE(s.is_straggler);
  // However slow, one of two stays below twice their mean.
  EXPECT_FALSE(slowest_rank(timings({0.001, 100.0}), 2.0).is_straggler);
}

TEST(SlowestRank, OneRankOrNoneIsNeverAStraggler) {
  const Straggler one = slowest_rank(timings({5.0}), 0.5);
  EXPECT_EQ(one.rank, 0);
  EXPECT_DOUBLE_EQ(one.ratio, 1.0);
  EXPECT_FALSE(one.is_straggler);
  const Straggler none = slowest_rank({}, 1.5);
  EXPECT_EQ(none.rank, -1);
  EXPECT_FALSE(none.is_straggler);
}

TEST(SlowestRank, TiesGoToTheLowestRankAndZeroTimesGiveNoRatio) {
  std::vector<RankTiming> ranks = timings({2.0, 1.0, 2.0});
  std::swap(ranks[0], ranks[2]);  // order of arrival does not matter
  EXPECT_EQ(slowest_rank(ranks, 1.5).rank, 0);
  const Straggler zero = slowest_rank(timings({0.0, 0.0}), 1.5);
  EXPECT_DOUBLE_EQ(zero.ratio, 0.0);
  EXPECT_FALSE(zero.is_straggler);
}

TEST(SlowestRank, JsonNamesEveryField) {
  const nlohmann::json j = slowest_rank(timings({1.0, 1.0, 3.0}), 1.5).to_json();
  EXPECT_EQ(j, (nlohmann::json{{"rank", 2},
                               {"host", "node-2"},
                               {"step_seconds", 3.0},
                               {"median_seconds", 1.0},
                               {"ratio", 3.0},
                               {"is_straggler", true}}));
}

TEST(HostSlots, RoundTripThroughASum) {
  const std::vector<std::string> hosts = {"fmnist-worker-0", "", "n\xC5\x93ud-2.example.org", "x"};
  EXPECT_EQ(decode_host_slots(allreduce(hosts), 4), hosts);
  // Gloo may reduce float32: bytes stay exact.
  std::vector<double> as_float;
  for (double v : allreduce(hosts)) as_float.push_back(static_cast<float>(v));
  EXPECT_EQ(decode_host_slots(as_float, 4), hosts);
}

TEST(HostSlots, LongNamesAreTruncatedToTheSlot) {
  const std::string exact(kHostSlotBytes, 'a');
  const std::string longer = std::string(kHostSlotBytes, 'b') + ".cluster.local";
  const auto decoded = decode_host_slots(allreduce({exact, longer, "c"}), 3);
  EXPECT_EQ(decoded, (std::vector<std::string>{exact, std::string(kHostSlotBytes, 'b'), "c"}));
}

TEST(HostSlots, MistakesAreInternalErrors) {
  using ddpipe::testing::error_of;
  EXPECT_NE(error_of(core::ErrorKind::kInternal, [] { encode_host_slot("h", 2, 2); })
                .find("rank 2 is not in [0, 2)"),
            std::string::npos);
  EXPECT_NE(error_of(core::ErrorKind::kInternal,
                     [] {
                       decode_host_slots({1, 2}, 1);
                     })
                .find("expected 1"),
            std::string::npos);
  std::vector<double> overlap = encode_host_slot("zz", 0, 2);  // 'z' + 'z' = 244: still a byte
  for (double& v : overlap) v *= 3;                            // 'z' × 3 = 366: not one
  EXPECT_NE(error_of(core::ErrorKind::kInternal, [&] { decode_host_slots(overlap, 2); })
                .find("two ranks"),
            std::string::npos);
}

}  // namespace
}  // namespace ddpipe::telemetry
