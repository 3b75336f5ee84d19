// ddpipe::dist — DistributedDataParallel for a libtorch module, over a Communicator.
//
// What PyTorch's DDP does, in the same order:
//  * at construction, rank 0's parameters and buffers are broadcast to every rank;
//  * before each training forward, buffers (batch-norm running statistics) are broadcast from
//    rank 0 (broadcast_buffers=True);
//  * gradients are averaged (Gloo has no average: sum, then divide by the world size) in
//    buckets of about `bucket_mb`, filled in reverse parameter order. Each parameter's .grad is
//    a view of its bucket (gradient_as_bucket_view=True), so autograd accumulates straight into
//    the buffer that is sent. Each bucket's allreduce starts from a hook on the gradient
//    accumulators as soon as its last gradient is in, overlapping the rest of the backward
//    pass; finish_gradients() waits for all of them;
//  * with gradient accumulation, only the last micro-batch communicates (no_sync semantics);
//  * with gradient compression (a communication hook, grad_compression.h), complete buckets go
//    to one worker thread that reduces them in order while the backward pass goes on.
// Not thread-safe; one instance per module.
#pragma once

#include <torch/nn/module.h>

#include <memory>

#include "dist/communicator.h"
#include "dist/grad_compression.h"

namespace ddpipe::dist {

class DataParallel {
 public:
  DataParallel(Communicator& comm, torch::nn::Module& module, double bucket_mb,
               const CompressionOptions& compression = {});
  ~DataParallel();

  // Copies rank 0's buffers to all ranks (call before each training forward).
  void sync_buffers();
  // Call before backward(); `sync` = this backward ends an accumulation window and must
  // communicate. With sync = false gradients simply accumulate locally.
  void begin_backward(bool sync);
  // After a synchronising backward: waits for every bucket and writes the averaged gradients
  // into each parameter's .grad. Throws core::Error(kRetryable) on a lost peer or timeout.
  void finish_gradients();

  // The compression state a checkpoint keeps (BucketReducer::state_bytes: collective, every
  // rank calls it at the same step; rank 0 gets the state), and its restore. "" / no-op without
  // a stateful mode.
  std::string compression_state();
  void load_compression_state(const std::string& bytes, const std::string& where);

  // Zeroes the gradients in place (use instead of Optimizer::zero_grad(), which would detach
  // the bucket views).
  void zero_grad();

  // Communication time not hidden behind compute (seconds spent in finish_gradients()).
  double exposed_comm_seconds() const;
  // Seconds spent in sync_buffers(): the broadcast also waits for the slowest rank to reach
  // the step (with per-step buffers, that is where a fast rank waits for a straggler).
  double buffer_sync_seconds() const;
  // The communication window: per synchronising step, from the first bucket's allreduce launch
  // until every bucket is reduced (summed). 1 − exposed/comm is the share of it hidden behind
  // the backward pass.
  double comm_seconds() const;
  int64_t num_buckets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddpipe::dist
