// ddpipe::dist — starting the ranks of one node as local processes, like
// `torchrun --nnodes M --node-rank i --nproc-per-node K`: each child gets MASTER_ADDR,
// MASTER_PORT, WORLD_SIZE (= M·K), RANK (= i·K + local rank), LOCAL_RANK, LOCAL_WORLD_SIZE,
// GROUP_RANK, DDPIPE_RESTART_COUNT and TORCHELASTIC_ERROR_FILE. When one rank fails, the others
// are stopped (SIGTERM, then SIGKILL after a grace period) so that nothing hangs; with
// max_restarts the whole group is then started again (torchrun's elastic agent), at most
// max_restarts times. A rank that exits with a permanent code (1–127, e.g. a bad config) is not
// retried. SIGINT/SIGTERM to the launcher are forwarded to the ranks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ddpipe::dist {

// A failed attempt of the group, as the launcher saw it.
struct AttemptEnd {
  int64_t attempt = 0;       // 0 for the first
  int code = 0;              // the exit code it ends with (see launch_local)
  int64_t failed_rank = -1;  // the first rank that failed
  std::string reason;        // its error file's text, or how it died
  bool restarting = false;   // another attempt follows
};

struct LaunchOptions {
  int64_t nproc = 1;  // ranks on this node
  int64_t nnodes = 1;
  int64_t node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 0;  // 0 = a free port on master_addr (single node only)
  int64_t max_restarts = 0;
  double restart_delay_seconds = 1.0;
  std::string error_dir;          // where ranks write their error files ("" = a temp dir)
  std::vector<std::string> argv;  // program and arguments of every rank
  double grace_seconds = 10.0;
  // Called on the launcher's thread after each failed attempt, before a restart (e.g. to
  // record the run as restarting or failed). Exceptions it throws are logged and ignored.
  std::function<void(const AttemptEnd&)> on_attempt_end;
};

// Runs the ranks to completion. Returns 0 when every rank exited 0, otherwise the exit code
// of the first rank that failed in the last attempt (128 + signal number for a rank killed by
// a signal), after logging a summary of every attempt.
int launch_local(const LaunchOptions& options);

// A TCP port that is free on `addr` right now.
int64_t free_port(const std::string& addr);

}  // namespace ddpipe::dist
