// ddpipe::dist — who this process is in the job: the rendezvous contracts of torchrun, of a
// Kubeflow PyTorchJob v1 pod and of a Kubeflow Trainer v2 pod.
//
//   torchrun / `ddpipe launch` child   MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK,
//                                      LOCAL_WORLD_SIZE (the launcher computed the global rank)
//   PyTorchJob v1 (training operator)  MASTER_ADDR=<job>-master-0, MASTER_PORT=23456,
//                                      WORLD_SIZE = pods × nprocPerNode, RANK = pod index, plus
//                                      PET_NNODES, PET_NODE_RANK, PET_NPROC_PER_NODE, PET_MASTER_*
//   Trainer v2 (torchrun arguments)    PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK,
//                                      PET_MASTER_ADDR, PET_MASTER_PORT only
//
// In a pod, RANK is the pod's index, not a process's: a pod that runs several ranks runs
// `ddpipe launch`, which reads the node's place with node_from_env() and gives each rank its
// global RANK = node rank × processes per node + local rank.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ddpipe::dist {

struct WorldInfo {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  int64_t local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  // Which contract the environment followed: "single", "torchrun" (LOCAL_RANK set, or plain
  // WORLD_SIZE/RANK), "pytorchjob" (WORLD_SIZE with PET_*) or "trainer-v2" (PET_* only).
  std::string contract = "single";
};

// Reads the environment of one rank process and logs rank, local rank, world size and the
// contract. No WORLD_SIZE and no PET_NNODES means a single process (rank 0 of 1). Plain
// WORLD_SIZE/RANK without LOCAL_RANK keeps LOCAL_RANK = RANK (several ranks on one machine).
// Throws core::Error(kUsage) naming the variables for non-numbers, RANK >= WORLD_SIZE, a missing
// master when the world has several ranks, and combinations that cannot describe this process:
// WORLD_SIZE ≠ PET_NNODES × processes per pod, RANK ≠ PET_NODE_RANK, MASTER_ADDR ≠
// PET_MASTER_ADDR, PET_NPROC_PER_NODE > 1 for a process not started by a launcher, and elastic
// jobs (PET_NNODES=min:max), which ddpipe does not support.
WorldInfo world_from_env();

// This node's ranks when `ddpipe launch` runs in a pod of a multi-node job.
struct NodePlan {
  int64_t nnodes = 1;
  int64_t node_rank = 0;
  int64_t nproc = 1;  // ranks started on this node
  std::string master_addr;
  int64_t master_port = 0;
  std::string contract;  // "pytorchjob" or "trainer-v2"
};

// For `ddpipe launch`: nullopt unless PET_NNODES is set (a PyTorchJob v1 or Trainer v2 pod).
// `nproc` is the configured dist.nproc and `nproc_given` whether the user chose it (flag or
// --set). A numeric PET_NPROC_PER_NODE decides the number of local ranks and must equal a given
// nproc. "auto", "cpu" or "gpu": a given nproc decides; otherwise, under v1 (WORLD_SIZE set) the
// configured `nproc`, under Trainer v2 (no WORLD_SIZE) available_cpus(), as the v2 torch plugin
// turns "auto" into the CPU count of a CPU-only node (it does so itself when the TrainJob has
// resourcesPerNode, so a v2 pod sees "auto" only without CPU resources or with GPUs). The node
// rank is PET_NODE_RANK (= RANK, the pod index, under v1); the master is MASTER_ADDR/PORT, else
// PET_MASTER_ADDR/PORT (v2: <job>-node-0-0.<job>:29500); with a numeric PET_NPROC_PER_NODE, v1's
// WORLD_SIZE must equal nnodes × nproc. Throws core::Error(kUsage) for inconsistent values.
std::optional<NodePlan> node_from_env(int64_t nproc, bool nproc_given);

// The CPUs this process may use: those of its affinity mask, fewer when the cgroup's cpu.max
// quota allows fewer (rounded up); at least 1.
int64_t available_cpus();

}  // namespace ddpipe::dist
