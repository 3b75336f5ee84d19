#include "data/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/fs.h"
#include "fixtures.h"
#include "test_util.h"

namespace ddpipe::data {
namespace {

namespace dt = ddpipe::testing;
using core::ErrorKind;

TEST(SamplerTest, PartitionsWithPaddingOrDropping) {
  for (int64_t n : {0, 1, 3, 10, 11, 12, 97}) {
    for (int64_t world : {1, 2, 3, 4, 8}) {
      std::multiset<int64_t> all;
      for (int64_t rank = 0; rank < world; ++rank) {
        const auto idx = distributed_sampler_indices(n, world, rank, true, 7, 1, false);
        EXPECT_EQ(static_cast<int64_t>(idx.size()), (n + world - 1) / world);
        all.insert(idx.begin(), idx.end());
        const auto dropped = distributed_sampler_indices(n, world, rank, true, 7, 1, true);
        EXPECT_EQ(static_cast<int64_t>(dropped.size()), n / world) << n << " " << world;
      }
      for (int64_t i = 0; i < n; ++i) EXPECT_GE(all.count(i), 1u);  // every index is seen
    }
  }
  EXPECT_EQ(distributed_sampler_indices(5, 2, 1, false, 0, 0, false),
            (std::vector<int64_t>{1, 3, 0}));
  EXPECT_EQ(distributed_sampler_indices(5, 2, 1, false, 0, 0, true), (std::vector<int64_t>{1, 3}));
}

TEST(SamplerTest, ShuffleDependsOnSeedPlusEpoch) {
  const auto a = distributed_sampler_indices(100, 2, 0, true, 10, 0, false);
  EXPECT_EQ(a, distributed_sampler_indices(100, 2, 0, true, 10, 0, false));
  EXPECT_NE(a, distributed_sampler_indices(100, 2, 0, true, 10, 1, false));
  EXPECT_EQ(a, distributed_sampler_indices(100, 2, 0, true, 9, 1, false));  // seed + epoch
  EXPECT_TRUE(dt::throws_error([] { distributed_sampler_indices(10, 2, 2, true, 0, 0, false); },
                               ErrorKind::kUsage, {"rank"}));
  EXPECT_TRUE(dt::throws_error([] { distributed_sampler_indices(10, 0, 0, true, 0, 0, false); },
                               ErrorKind::kUsage, {"world"}));
}

struct Combo {
  int64_t n, world, rank;
  uint64_t seed;
  int64_t epoch;
  bool shuffle, drop_last;
};

TEST(SamplerTest, EqualsPythonDistributedSampler) {
  if (!dt::python_torch_available()) {
    FAIL() << "/usr/bin/python3 cannot import torch (scripts/install-deps.sh installs "
              "python3-torch): cannot compare with torch.utils.data.DistributedSampler";
  }
  std::vector<Combo> combos;
  const std::vector<std::pair<int64_t, int64_t>> sizes = {
      {10, 3}, {7, 4}, {3, 8}, {1, 3}, {0, 2}, {12, 4}, {100, 1}, {1000, 6}, {60000, 2}};
  const std::vector<std::pair<uint64_t, int64_t>> seeds = {{0, 0}, {42, 3}, {(1ULL << 40) + 5, 1}};
  for (auto [n, world] : sizes) {
    for (int64_t rank = 0; rank < world; ++rank) {
      for (auto [seed, epoch] : seeds) {
        for (bool shuffle : {true, false}) {
          for (bool drop : {false, true}) {
            if (!shuffle && seed != 0) continue;
            combos.push_back({n, world, rank, seed, epoch, shuffle, drop});
          }
        }
      }
    }
  }
  dt::TempDir tmp;
  nlohmann::json spec = nlohmann::json::array();
  for (const Combo& c : combos) {
    spec.push_back({c.n, c.world, c.rank, c.seed, c.epoch, c.shuffle, c.drop_last});
  }
  dt::write_bytes(tmp / "combos.json", spec.dump());
  dt::write_bytes(tmp / "sampler.py", R"(
import json, sys
from torch.utils.data import DistributedSampler
out = []
for n, world, rank, seed, epoch, shuffle, drop_last in json.load(open(sys.argv[1])):
    s = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle,
                           seed=seed, drop_last=drop_last)
    s.set_epoch(epoch)
    out.append(list(s))
json.dump(out, open(sys.argv[2], "w"))
)");
  const auto r =
      dt::run_command("/usr/bin/python3 " + (tmp / "sampler.py").string() + " " +
                      (tmp / "combos.json").string() + " " + (tmp / "out.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto expected = nlohmann::json::parse(core::read_file(tmp / "out.json"));
  ASSERT_EQ(expected.size(), combos.size());
  for (size_t i = 0; i < combos.size(); ++i) {
    const Combo& c = combos[i];
    EXPECT_EQ(
        distributed_sampler_indices(c.n, c.world, c.rank, c.shuffle, c.seed, c.epoch, c.drop_last),
        expected[i].get<std::vector<int64_t>>())
        << "n=" << c.n << " world=" << c.world << " rank=" << c.rank << " seed=" << c.seed
        << " epoch=" << c.epoch << " shuffle=" << c.shuffle << " drop_last=" << c.drop_last;
  }
}

}  // namespace
}  // namespace ddpipe::data
