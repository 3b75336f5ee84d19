// ddpipe::telemetry — which rank holds the job back. In synchronous data parallelism every step
// waits for the slowest rank, so one slow node slows all: after each epoch the trainer gathers
// every rank's mean step time and names the slowest, and its host, when it stands out.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ddpipe::telemetry {

struct RankTiming {
  int64_t rank = 0;
  std::string host;
  double step_seconds = 0;  // this epoch's mean step time of the rank
};

struct Straggler {
  int64_t rank = -1;  // the slowest rank; -1 when there were no ranks
  std::string host;
  double step_seconds = 0;    // its mean step time
  double median_seconds = 0;  // the median over all ranks
  double ratio = 0;           // step_seconds / median_seconds (0 when the median is 0)
  bool is_straggler = false;  // ratio > factor, with at least 2 ranks
  // {"rank","host","step_seconds","median_seconds","ratio","is_straggler"}
  nlohmann::json to_json() const;
};

// The slowest rank (the lowest rank of equally slow ones) and whether it is a straggler: its
// step time is more than `factor` × the median over all ranks (itself included). With 2 ranks the
// median is their mean, so the ratio stays below 2 and a factor of 2 or more never fires. One
// rank (or none) is never a straggler. Never throws.
Straggler slowest_rank(const std::vector<RankTiming>& ranks, double factor);

// Hostnames through a numeric allreduce (once, at start-up): every rank encodes its host into
// its own slot of a zero vector, the vectors are summed over all ranks, and every rank decodes
// all hosts. A slot holds kHostSlotBytes bytes (one double each, 0–255): longer names are
// truncated, shorter ones end at the first zero. The sum is exact in float32 and float64.
constexpr int64_t kHostSlotBytes = 64;

// world_size × kHostSlotBytes values, zero but for `rank`'s slot. Throws core::Error (kInternal)
// when rank is not in [0, world_size).
std::vector<double> encode_host_slot(const std::string& host, int64_t rank, int64_t world_size);

// The world_size hosts, by rank, from the summed vector. Throws core::Error (kInternal) when its
// size is not world_size × kHostSlotBytes or a value is not a byte (two ranks wrote one slot).
std::vector<std::string> decode_host_slots(const std::vector<double>& summed, int64_t world_size);

}  // namespace ddpipe::telemetry
