#include "telemetry/stragglers.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace ddpipe::telemetry {

nlohmann::json Straggler::to_json() const {
  return {{"rank", rank},
          {"host", host},
          {"step_seconds", step_seconds},
          {"median_seconds", median_seconds},
          {"ratio", ratio},
          {"is_straggler", is_straggler}};
}

Straggler slowest_rank(const std::vector<RankTiming>& ranks, double factor) {
  Straggler s;
  if (ranks.empty()) return s;
  const RankTiming* slowest = &ranks.front();
  std::vector<double> times;
  times.reserve(ranks.size());
  for (const RankTiming& r : ranks) {
    times.push_back(r.step_seconds);
    const bool slower = r.step_seconds > slowest->step_seconds;
    if (slower || (r.step_seconds == slowest->step_seconds && r.rank < slowest->rank)) slowest = &r;
  }
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  s.median_seconds = n % 2 == 1 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  s.rank = slowest->rank;
  s.host = slowest->host;
  s.step_seconds = slowest->step_seconds;
  s.ratio = s.median_seconds > 0 ? s.step_seconds / s.median_seconds : 0.0;
  s.is_straggler = n >= 2 && s.ratio > factor;
  return s;
}

std::vector<double> encode_host_slot(const std::string& host, int64_t rank, int64_t world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw core::Error(core::ErrorKind::kInternal, "host slots: rank " + std::to_string(rank) +
                                                      " is not in [0, " +
                                                      std::to_string(world_size) + ")");
  }
  std::vector<double> slots(static_cast<size_t>(world_size * kHostSlotBytes), 0.0);
  const size_t n = std::min(host.size(), static_cast<size_t>(kHostSlotBytes));
  const size_t base = static_cast<size_t>(rank * kHostSlotBytes);
  for (size_t i = 0; i < n; ++i) slots[base + i] = static_cast<unsigned char>(host[i]);
  return slots;
}

std::vector<std::string> decode_host_slots(const std::vector<double>& summed, int64_t world_size) {
  if (world_size < 1 || summed.size() != static_cast<size_t>(world_size * kHostSlotBytes)) {
    throw core::Error(core::ErrorKind::kInternal,
                      "host slots: expected " + std::to_string(world_size) + " × " +
                          std::to_string(kHostSlotBytes) + " values, got " +
                          std::to_string(summed.size()));
  }
  std::vector<std::string> hosts(static_cast<size_t>(world_size));
  for (size_t i = 0; i < summed.size(); ++i) {
    const double v = summed[i];
    if (!(v >= 0 && v <= 255 && v == std::floor(v))) {
      throw core::Error(core::ErrorKind::kInternal,
                        "host slots: value " + std::to_string(v) + " at byte " +
                            std::to_string(i % kHostSlotBytes) + " of rank " +
                            std::to_string(i / kHostSlotBytes) +
                            "'s slot is not a byte 0-255 (did two ranks write one slot?)");
    }
    std::string& host = hosts[i / kHostSlotBytes];
    const bool ended = i % kHostSlotBytes > host.size();  // a zero came before
    if (v != 0 && !ended) host.push_back(static_cast<char>(static_cast<unsigned char>(v)));
  }
  return hosts;
}

}  // namespace ddpipe::telemetry
