#include "data/stream_order.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "data/sampler.h"

namespace ddpipe::data {
namespace {

// The shards' visiting order: torch.randperm(n, generator=Generator().manual_seed(seed + epoch)).
std::vector<int64_t> shard_permutation(int64_t shards, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> perm(static_cast<size_t>(shards));
  if (shards == 0) return perm;
  auto gen = at::detail::createCPUGenerator(seed + static_cast<uint64_t>(epoch));
  const torch::Tensor p = torch::randperm(shards, gen, torch::kLong);
  std::copy(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + shards, perm.begin());
  return perm;
}

}  // namespace

std::vector<int64_t> shard_starts(const std::vector<int64_t>& shard_samples) {
  std::vector<int64_t> starts{0};
  starts.reserve(shard_samples.size() + 1);
  for (size_t i = 0; i < shard_samples.size(); ++i) {
    if (shard_samples[i] < 0) {
      core::fail_usage("sharded split: shard " + std::to_string(i) + " has a negative count (" +
                       std::to_string(shard_samples[i]) + " samples)");
    }
    starts.push_back(starts.back() + shard_samples[i]);
  }
  return starts;
}

int64_t shard_of(const std::vector<int64_t>& starts, int64_t position) {
  if (position < 0 || position >= starts.back()) {
    core::fail_usage("sharded split: sample " + std::to_string(position) +
                     " is outside the split (" + std::to_string(starts.back()) + " samples)");
  }
  // The last shard beginning at or before `position` (empty shards begin where the next does).
  const auto it = std::upper_bound(starts.begin(), starts.end(), position);
  return static_cast<int64_t>(it - starts.begin()) - 1;
}

std::vector<int64_t> stream_order(const std::vector<int64_t>& shard_samples, int64_t shuffle_buffer,
                                  uint64_t seed, int64_t epoch) {
  const std::vector<int64_t> starts = shard_starts(shard_samples);
  std::vector<int64_t> stream;
  stream.reserve(static_cast<size_t>(starts.back()));
  for (int64_t s : shard_permutation(static_cast<int64_t>(shard_samples.size()), seed, epoch)) {
    for (int64_t p = starts[static_cast<size_t>(s)]; p < starts[static_cast<size_t>(s) + 1]; ++p) {
      stream.push_back(p);
    }
  }
  if (shuffle_buffer <= 1) return stream;
  at::CPUGeneratorImpl gen((seed + static_cast<uint64_t>(epoch)) ^ kShuffleBufferSalt);
  const size_t k = std::min(static_cast<size_t>(shuffle_buffer), stream.size());
  std::vector<int64_t> buffer(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(k));
  std::vector<int64_t> out;
  out.reserve(stream.size());
  for (size_t i = k; i < stream.size(); ++i) {
    const size_t j = gen.random64() % k;
    out.push_back(buffer[j]);
    buffer[j] = stream[i];
  }
  while (!buffer.empty()) {  // drain in a random order
    const size_t j = gen.random64() % buffer.size();
    out.push_back(buffer[j]);
    buffer[j] = buffer.back();
    buffer.pop_back();
  }
  return out;
}

std::vector<int64_t> pad_to_world(std::vector<int64_t> order, int64_t world_size) {
  if (world_size <= 0) {
    core::fail_usage("sharded split: invalid world size " + std::to_string(world_size));
  }
  const auto n = static_cast<int64_t>(order.size());
  const int64_t total = (n + world_size - 1) / world_size * world_size;
  order.reserve(static_cast<size_t>(total));
  for (int64_t i = n; i < total; ++i) order.push_back(order[static_cast<size_t>(i - n)]);
  return order;
}

SplitOrder SplitOrder::in_memory(int64_t size) {
  SplitOrder s;
  s.size = size;
  return s;
}

SplitOrder SplitOrder::sharded(std::vector<int64_t> shard_samples, int64_t shuffle_buffer) {
  SplitOrder s;
  s.form = Form::kSharded;
  s.size = shard_starts(shard_samples).back();
  s.shard_samples = std::move(shard_samples);
  s.shuffle_buffer = shuffle_buffer;
  return s;
}

std::vector<int64_t> epoch_order(const SplitOrder& split, int64_t world_size, uint64_t seed,
                                 int64_t epoch) {
  if (split.form == SplitOrder::Form::kInMemory) {
    return distributed_sampler_order(split.size, world_size, true, seed, epoch, false);
  }
  return pad_to_world(stream_order(split.shard_samples, split.shuffle_buffer, seed, epoch),
                      world_size);
}

ShardSchedule shard_schedule(const std::vector<int64_t>& indices,
                             const std::vector<int64_t>& batch_sizes, int64_t first_step,
                             const std::vector<int64_t>& shard_samples) {
  const std::vector<int64_t> starts = shard_starts(shard_samples);
  if (std::accumulate(batch_sizes.begin(), batch_sizes.end(), int64_t{0}) !=
      static_cast<int64_t>(indices.size())) {
    core::fail_usage("shard schedule: the batch sizes do not add up to the " +
                     std::to_string(indices.size()) + " indices of the plan");
  }
  ShardSchedule sched;
  sched.first_step = first_step;
  std::vector<int64_t> slot(shard_samples.size(), -1);  // shard → its entry in sched.shards
  std::vector<int64_t> opened(batch_sizes.size(), 0);   // samples of the shards opened at a step
  size_t i = 0;
  for (size_t b = 0; b < batch_sizes.size(); ++b) {
    const int64_t step = first_step + static_cast<int64_t>(b);
    for (int64_t n = 0; n < batch_sizes[b]; ++n, ++i) {
      const auto shard = static_cast<size_t>(shard_of(starts, indices[i]));
      if (slot[shard] < 0) {
        slot[shard] = static_cast<int64_t>(sched.shards.size());
        sched.shards.push_back({static_cast<int64_t>(shard), step, step, 0});
      }
      ShardUse& use = sched.shards[static_cast<size_t>(slot[shard])];
      use.last_step = step;
      ++use.samples;
    }
  }
  for (const ShardUse& use : sched.shards) {
    opened[static_cast<size_t>(use.first_step - first_step)] += use.samples;
  }
  int64_t held = 0;
  for (size_t b = 0; b < batch_sizes.size(); ++b) {
    held += opened[b];  // opened at this step, then this step's batch is still to train
    sched.held_samples.push_back(held);
    held -= batch_sizes[b];
  }
  return sched;
}

int64_t ShardSchedule::peak_open_shards() const {
  std::vector<int64_t> delta(held_samples.size() + 1, 0);
  for (const ShardUse& use : shards) {
    ++delta[static_cast<size_t>(use.first_step - first_step)];
    --delta[static_cast<size_t>(use.last_step - first_step) + 1];
  }
  int64_t open = 0, peak = 0;
  for (int64_t d : delta) peak = std::max(peak, open += d);
  return peak;
}

int64_t ShardSchedule::peak_held_samples() const {
  return held_samples.empty() ? 0 : *std::max_element(held_samples.begin(), held_samples.end());
}

}  // namespace ddpipe::data
