// ddpipe::dist — starting the ranks of one node as local processes, like
// `torchrun --nproc-per-node N`: each child gets MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK,
// LOCAL_RANK and LOCAL_WORLD_SIZE. When one rank fails, the others are stopped (SIGTERM, then
// SIGKILL after a grace period) so that nothing hangs. SIGINT/SIGTERM to the launcher are
// forwarded to the ranks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ddpipe::dist {

struct LaunchOptions {
  int64_t nproc = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 0;        // 0 = a free port on master_addr
  std::vector<std::string> argv;  // program and arguments of every rank
  double grace_seconds = 10.0;
};

// Runs the ranks to completion. Returns 0 when every rank exited 0, otherwise the exit code
// of the first rank that failed (128 + signal number for a rank killed by a signal).
int launch_local(const LaunchOptions& options);

// A TCP port that is free on `addr` right now.
int64_t free_port(const std::string& addr);

}  // namespace ddpipe::dist
