// ddpipe::dist — gradient compression for DataParallel's buckets, as PyTorch DDP's communication
// hooks (torch.distributed.algorithms.ddp_comm_hooks):
//   none      fp32 allreduce, then ÷ world size (DataParallel's own asynchronous path);
//   bf16/fp16 bf16_compress_hook / fp16_compress_hook: the bucket ÷ world size is cast to 16 bits,
//             summed in 16 bits (each addition rounded to nearest even) and cast back. Half the
//             bytes; the result is the average of the 16-bit shares up to one rounding per
//             addition), on Gloo's ring allreduce (Communicator::allreduce_sum_16bit);
//   powersgd  powerSGD_hook: in each bucket, every gradient of two or more dimensions, seen as an
//             n × m matrix M (n = its first dimension) with (n + m)·r·2 < n·m, is replaced by
//             the rank-r approximation P Qᵀ of the average, P = orth(Σ M Q), Q = (Σ Mᵀ P) / N;
//             the other gradients are averaged in fp32. Error feedback (what the approximation
//             left out is added to the next step's gradient, per rank) and warm start (Q carries
//             over from step to step, from a seeded random start identical on every rank). The
//             first powersgd_start_step synchronised steps average in fp32 (start_powerSGD_iter).
// A BucketReducer runs on one thread, bucket after bucket, for every rank in the same order.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"

namespace ddpipe::dist {

enum class GradCompression { kNone, kBf16, kFp16, kPowerSgd };

// One of core::kGradCompressions (dist.grad_compression); anything else throws
// core::Error(kUsage) naming them.
GradCompression grad_compression_from(const std::string& name);

struct CompressionOptions {
  GradCompression mode = GradCompression::kNone;
  int64_t powersgd_rank = 1;           // r, the columns of P and Q
  int64_t powersgd_start_step = 1000;  // synchronised steps averaged in fp32 first
  uint64_t seed = 0;                   // Q's random start
};

// One gradient of a bucket: where it starts in the flat fp32 bucket, and its shape.
struct BucketEntry {
  int64_t offset = 0;
  std::vector<int64_t> sizes;
};
using BucketLayout = std::vector<BucketEntry>;

class BucketReducer {
 public:
  virtual ~BucketReducer() = default;
  // Replaces `flat` (bucket `bucket`: the sum of this rank's gradients) by the average over the
  // ranks as the mode computes it. Collective and synchronous. Throws core::Error(kRetryable) on
  // a lost peer or timeout.
  virtual void reduce(size_t bucket, torch::Tensor& flat) = 0;
  // After every bucket of a synchronised step.
  virtual void step_done() {}
  // What a checkpoint keeps so that a resumed run computes the same steps bit for bit: for
  // powersgd the step count, each bucket's Q and every rank's error, as a torch archive.
  // Collective (every rank sends its errors); rank 0 gets the archive, the other ranks "".
  // "" for the stateless modes.
  virtual std::string state_bytes() { return ""; }
  // Restores what state_bytes() returned on rank 0, each rank taking its own errors. When it was
  // written at another world size the errors start again from zero (logged). Bytes that are no
  // such state throw core::Error(kData) naming `where`.
  virtual void load_state(const std::string& bytes, const std::string& where) {}
};

// The reducer of `options.mode` for buckets laid out as `layout`; none for kNone.
std::unique_ptr<BucketReducer> make_bucket_reducer(const CompressionOptions& options,
                                                   Communicator& comm,
                                                   std::vector<BucketLayout> layout);

}  // namespace ddpipe::dist
