// ddpipe::data — the index lists of PyTorch's torch.utils.data.DistributedSampler.
//
// Same semantics and, because libtorch's seeded randperm equals Python's, the same indices:
// shuffle with a generator seeded by seed + epoch; without drop_last, pad by repeating the
// head so that every rank gets ceil(n / world) indices; with drop_last, cut the tail; rank r
// takes positions r, r + world, … of that order. With a per-rank batch b, step s of every rank
// together therefore covers one contiguous block [s·b·world, (s+1)·b·world) of the order: what
// lets a job resume at another world size and still see the same samples at every step.
#pragma once

#include <cstdint>
#include <vector>

namespace ddpipe::data {

// The epoch's whole order before it is dealt out: shuffled (or not), then padded or cut to a
// multiple of `world`.
std::vector<int64_t> distributed_sampler_order(int64_t dataset_size, int64_t world_size,
                                               bool shuffle, uint64_t seed, int64_t epoch,
                                               bool drop_last);

// Rank `rank`'s share of that order.
std::vector<int64_t> distributed_sampler_indices(int64_t dataset_size, int64_t world_size,
                                                 int64_t rank, bool shuffle, uint64_t seed,
                                                 int64_t epoch, bool drop_last);

}  // namespace ddpipe::data
