// ddpipe::dist — who this process is in the job: the rendezvous contract of torchrun and of a
// Kubeflow PyTorchJob pod (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK).
#pragma once

#include <cstdint>
#include <string>

namespace ddpipe::dist {

struct WorldInfo {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  int64_t local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
};

// Reads the environment. Missing WORLD_SIZE means a single process (rank 0 of 1). Throws
// core::Error(kUsage) naming the variable for non-numbers, RANK >= WORLD_SIZE, or a missing
// MASTER_ADDR/MASTER_PORT when WORLD_SIZE > 1.
WorldInfo world_from_env();

}  // namespace ddpipe::dist
