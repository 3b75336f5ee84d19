#include "data/sampler.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "core/error.h"

namespace ddpipe::data {

std::vector<int64_t> distributed_sampler_order(int64_t n, int64_t world, bool shuffle,
                                               uint64_t seed, int64_t epoch, bool drop_last) {
  if (n < 0 || world <= 0) {
    core::fail_usage("distributed sampler: invalid dataset size " + std::to_string(n) +
                     " or world size " + std::to_string(world));
  }
  std::vector<int64_t> indices(static_cast<size_t>(n));
  if (shuffle) {
    // torch.Generator().manual_seed(seed + epoch); torch.randperm(n, generator=g)
    auto gen = at::detail::createCPUGenerator(seed + static_cast<uint64_t>(epoch));
    const torch::Tensor perm = torch::randperm(n, gen, torch::kLong);
    const int64_t* p = perm.data_ptr<int64_t>();
    std::copy(p, p + n, indices.begin());
  } else {
    for (int64_t i = 0; i < n; ++i) indices[static_cast<size_t>(i)] = i;
  }
  // Python: num_samples = ceil((n - world) / world) with drop_last and a remainder, else
  // ceil(n / world). The first is floor(n / world) (0 when n < world).
  const int64_t num_samples = drop_last ? n / world : (n + world - 1) / world;
  const int64_t total = num_samples * world;
  if (total > n) {  // pad by repeating the head, the whole list as often as needed
    indices.reserve(static_cast<size_t>(total));
    for (int64_t i = n; i < total; ++i) indices.push_back(indices[static_cast<size_t>(i - n)]);
  }
  indices.resize(static_cast<size_t>(total));
  return indices;
}

std::vector<int64_t> distributed_sampler_indices(int64_t n, int64_t world, int64_t rank,
                                                 bool shuffle, uint64_t seed, int64_t epoch,
                                                 bool drop_last) {
  if (rank < 0 || rank >= world) {
    core::fail_usage("distributed sampler: rank " + std::to_string(rank) +
                     " is not below the world size " + std::to_string(world));
  }
  const std::vector<int64_t> order =
      distributed_sampler_order(n, world, shuffle, seed, epoch, drop_last);
  std::vector<int64_t> mine;
  mine.reserve(order.size() / static_cast<size_t>(world));
  for (size_t i = static_cast<size_t>(rank); i < order.size(); i += static_cast<size_t>(world)) {
    mine.push_back(order[i]);
  }
  return mine;
}

}  // namespace ddpipe::data
