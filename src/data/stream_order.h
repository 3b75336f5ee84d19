// ddpipe::data — the order of an epoch over a sharded split, and what each rank needs of its
// shards. Pure functions of sample counts: no I/O, thread-safe.
//
// A sharded split is a list of shards in stored order, shard i holding `shard_samples[i]`
// samples; a sample is named by its position in the split's stored order (shard i holds
// positions [start_i, start_i + shard_samples[i])). An epoch reads the shards in a seeded
// permutation, each shard sequentially, through a shuffle buffer (docs/stream-order.md):
//   shards   torch.randperm(num_shards, generator=torch.Generator().manual_seed(seed + epoch))
//   stream   the shards in that order, each shard's samples in stored order
//   buffer   fill with the first K samples; for each next sample draw j uniform in [0, K) from
//            a generator seeded with (seed + epoch) XOR kShuffleBufferSalt, emit buffer[j] and
//            put the new sample there; at the end drain the buffer in a random order from the
//            same generator (draw j in the shrinking buffer, emit it, move the last into j).
// The draws are libtorch's CPU generator (mt19937, as torch.Generator): random64() % size.
// K ≤ 1: the stream as it is; K ≥ the split's size: a uniformly random permutation.
//
// Properties (tested in tests/data/stream_order_test.cpp):
//   - every sample exactly once; the order depends only on (seed, epoch, counts, K);
//   - the sample at output position t was at most K positions further in the stream: it is
//     never emitted before stream position − K; it may be emitted arbitrarily late (it stays
//     in the buffer at each draw with probability 1 − 1/K: geometric, mean K draws).
#pragma once

#include <cstdint>
#include <vector>

namespace ddpipe::data {

// Mixed into the buffer generator's seed so that its draws differ from the shard permutation's.
inline constexpr uint64_t kShuffleBufferSalt = 0x5368756666427566ULL;  // "ShuffBuf"

// The position of the first sample of each shard, and the total at the end (size + 1 entries).
// Throws core::Error(kUsage) for a negative count.
std::vector<int64_t> shard_starts(const std::vector<int64_t>& shard_samples);

// The shard holding `position`, given shard_starts(); kUsage when outside the split.
int64_t shard_of(const std::vector<int64_t>& starts, int64_t position);

// The epoch's order of a sharded split (unpadded): every position in [0, Σ shard_samples)
// exactly once, shards permuted, then shuffled through a buffer of `shuffle_buffer` samples.
std::vector<int64_t> stream_order(const std::vector<int64_t>& shard_samples, int64_t shuffle_buffer,
                                  uint64_t seed, int64_t epoch);

// `order` padded to a multiple of `world_size` by repeating its head (the whole list as often
// as needed), as DistributedSampler pads without drop_last. kUsage for world_size ≤ 0.
std::vector<int64_t> pad_to_world(std::vector<int64_t> order, int64_t world_size);

// How an epoch's order is drawn, by the split's form: in memory (DistributedSampler's seeded
// permutation of `size` samples, data::distributed_sampler_order) or sharded (stream_order).
struct SplitOrder {
  enum class Form { kInMemory, kSharded };
  Form form = Form::kInMemory;
  int64_t size = 0;                    // samples in the split
  std::vector<int64_t> shard_samples;  // kSharded: each shard's samples, in stored order
  int64_t shuffle_buffer = 0;          // kSharded: data.shuffle_buffer

  static SplitOrder in_memory(int64_t size);
  static SplitOrder sharded(std::vector<int64_t> shard_samples, int64_t shuffle_buffer);
};

// The whole epoch's order at the run's sample-order world size, padded to a multiple of it:
// exactly data::distributed_sampler_order(size, world_size, true, seed, epoch, false) in memory;
// pad_to_world(stream_order(...), world_size) when sharded.
std::vector<int64_t> epoch_order(const SplitOrder& split, int64_t world_size, uint64_t seed,
                                 int64_t epoch);

// When one rank needs each shard in an epoch, from its plan (train::EpochBatches: the indices it
// trains, in order, and its batch sizes from step `first_step` on): the shards in the order of
// their first use, with the first and last step that uses them, so that a cache can fetch them
// ahead in that order and drop a shard after its last step.
struct ShardUse {
  int64_t shard = 0;
  int64_t first_step = 0;
  int64_t last_step = 0;
  int64_t samples = 0;  // this rank's uses of the shard's samples (padding counts twice)
};
struct ShardSchedule {
  std::vector<ShardUse> shards;  // in first-use order
  // Per step from first_step: this rank's samples of the shards opened by then (first_step ≤
  // the step) that are still to be trained on at or after it — what a cache holds if it reads
  // a shard whole at its first use and keeps only the rank's samples until each is trained on.
  std::vector<int64_t> held_samples;
  int64_t first_step = 0;

  // The most shards that are between their first and last use at one step.
  int64_t peak_open_shards() const;
  int64_t peak_held_samples() const;
};
// What bounds them, with a shuffle buffer of K samples, shards of m samples and G samples per
// step over all ranks: a sample is never used before its stream position − K, so by the end of
// step s only shards that begin before stream position (s+1)·G + K are opened, and all samples
// of steps before s are used: the samples held at step s, over all ranks and so on any one, are
// fewer than G + K + m — about K/m + 2 shards' worth when G ≤ m. Shards *open* between first and
// last use are not bounded so: a sample waits in the buffer a geometric number of draws of mean
// K, so the last of a shard's m samples leaves about K·ln(m) draws after the shard was read, and
// about K·(1 + ln m)/m shards are open at once (46 to 57 in a simulation of K = 1000, m = 100,
// where K/m + 2 = 12). A cache should therefore keep a shard's samples for this rank (or their
// byte ranges), not the whole shard, once it has read it.
// Throws core::Error(kUsage) when the batch sizes do not add up to the indices or an index is
// outside the split.
ShardSchedule shard_schedule(const std::vector<int64_t>& indices,
                             const std::vector<int64_t>& batch_sizes, int64_t first_step,
                             const std::vector<int64_t>& shard_samples);

}  // namespace ddpipe::data
