// ddpipe::data — the index lists of PyTorch's torch.utils.data.DistributedSampler.
//
// Same semantics and, because libtorch's seeded randperm equals Python's, the same indices:
// shuffle with a generator seeded by seed + epoch; without drop_last, pad by repeating the
// head so that every rank gets ceil(n / world) indices; with drop_last, cut the tail; rank r
// takes positions r, r + world, …
#pragma once

#include <cstdint>
#include <vector>

namespace ddpipe::data {

std::vector<int64_t> distributed_sampler_indices(int64_t dataset_size, int64_t world_size,
                                                 int64_t rank, bool shuffle, uint64_t seed,
                                                 int64_t epoch, bool drop_last);

}  // namespace ddpipe::data
