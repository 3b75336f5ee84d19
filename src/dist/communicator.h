// ddpipe::dist — collectives between the ranks of a job, over libtorch's c10d:
// rendezvous through c10d::TCPStore (rank 0 hosts it at MASTER_ADDR:MASTER_PORT), collectives
// through c10d::ProcessGroupGloo. With world size 1 nothing touches the network and every
// collective is a no-op. Every collective and the rendezvous honour `timeout`; a timeout or a
// lost peer throws core::Error(kRetryable) naming the operation and, when the heartbeats tell,
// the rank and address that went silent.
//
// Gang failure detection (world size > 1): every rank publishes a heartbeat in the rendezvous
// store each second. When a rank fails it raises an abort flag there; when a rank's heartbeat is
// older than `heartbeat_timeout`, or this rank cannot reach the store for that long, the job is
// lost too. In those cases every surviving rank logs the reason, records it in
// $TORCHELASTIC_ERROR_FILE and exits with code 128 (retry) within seconds, instead of hanging in
// a collective until its timeout — so an orchestrator can restart the whole group.
// One communicator per process; its methods are called from one thread.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <vector>

#include "dist/world.h"

namespace ddpipe::dist {

class Communicator {
 public:
  // `timeout` bounds every collective; `rendezvous_timeout` (default: `timeout`) bounds the
  // wait for the master's address to resolve and for every rank to join. Gloo binds to
  // $GLOO_SOCKET_IFNAME if set, else to the local address that routes to MASTER_ADDR (logged).
  Communicator(const WorldInfo& world, std::chrono::milliseconds timeout,
               std::chrono::milliseconds rendezvous_timeout = std::chrono::milliseconds(0),
               std::chrono::milliseconds heartbeat_timeout = std::chrono::seconds(30));
  ~Communicator();

  int64_t rank() const { return world_.rank; }
  int64_t world_size() const { return world_.world_size; }

  // In-place sum over all ranks.
  void allreduce_sum(std::vector<torch::Tensor>& tensors);
  // Starts an in-place sum of one (flat) tensor; wait() finishes it. Buckets use this to
  // overlap several reductions.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };
  std::unique_ptr<Pending> allreduce_sum_async(torch::Tensor& flat);
  // In-place sum of a contiguous bfloat16 or float16 tensor, each addition in fp32 rounded to
  // nearest even. Gloo's ring allreduce with ATen's vectorised kernels as its reduce function
  // (ProcessGroupGloo in libtorch 1.13 has no bf16 sum, and its fp16 sum is scalar); its own
  // Gloo context is connected on the first call, which every rank must make. Not to be called
  // from two threads at once.
  void allreduce_sum_16bit(torch::Tensor& t);
  // In-place copy of rank `root`'s tensors to every rank.
  void broadcast(std::vector<torch::Tensor>& tensors, int64_t root = 0);
  void barrier();

  // The local address Gloo uses (for logs and tests).
  const std::string& local_address() const;

  // Tells the other ranks that this one fails (they exit 128); best effort, never throws.
  void abort(const std::string& reason) noexcept;
  // Stops the heartbeat (call once training is over, before the ranks exit one by one).
  void stop_heartbeat() noexcept;

 private:
  struct Impl;
  WorldInfo world_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddpipe::dist
