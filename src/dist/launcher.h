// ddpipe::dist — starting the ranks of one node as local processes, like
// `torchrun --nnodes M --node-rank i --nproc-per-node K`: each child gets MASTER_ADDR,
// MASTER_PORT, WORLD_SIZE (= M·K), RANK (= i·K + local rank), LOCAL_RANK, LOCAL_WORLD_SIZE,
// GROUP_RANK, DDPIPE_RESTART_COUNT and TORCHELASTIC_ERROR_FILE. The processes are a
// supervisor::Group (supervisor/supervisor.h); docs/fault-tolerance.md tells the whole story.
//  - A rank fails (exits non-zero or is killed, e.g. SIGTERM sent to that rank alone): the others
//    get SIGTERM, and SIGKILL after grace_seconds, so that nothing hangs. With max_restarts the
//    group is then started again (torchrun's elastic agent), at most max_restarts times. A
//    permanent exit code (1–127, e.g. a bad config) is not retried.
//  - Elastic shrink (min_nproc > 0, single node only): when the same rank is the first to fail
//    in two attempts in a row, the next attempt runs one local rank fewer, never below
//    min_nproc. With nnodes > 1 it warns and keeps K (the other nodes' WORLD_SIZE would differ).
//  - The launcher gets SIGINT or SIGTERM (preemption): every rank gets the same signal and
//    preempt_stop_seconds to stop (a rank checkpoints and exits 143), then SIGKILL; no other
//    attempt follows, and launch_local returns the ranks' code.
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
  int64_t failed_rank = -1;  // the first rank that failed on its own; -1 when interrupted
  std::string reason;        // its error file's text, or how it died, or the launcher's signal
  bool restarting = false;   // another attempt follows
  int64_t nproc = 0;         // local ranks of this attempt
};

struct LaunchOptions {
  int64_t nproc = 1;  // ranks on this node
  int64_t nnodes = 1;
  int64_t node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 0;  // 0 = a free port on master_addr (single node only)
  int64_t max_restarts = 0;
  int64_t min_nproc = 0;  // elastic shrink down to this many local ranks; 0 = never shrink
  double restart_delay_seconds = 1.0;
  std::string error_dir;          // where ranks write their error files ("" = a temp dir)
  std::vector<std::string> argv;  // program and arguments of every rank
  double grace_seconds = 10.0;    // a rank failed: the others' time between SIGTERM and SIGKILL
  // The launcher got SIGINT/SIGTERM: the ranks' time to stop before SIGKILL (`ddpipe launch`:
  // core::preempt_stop_seconds(config.checkpoint)).
  double preempt_stop_seconds = 45.0;
  // Called on the launcher's thread after each failed attempt, before a restart (e.g. to
  // record the run as restarting or failed). Exceptions it throws are logged and ignored.
  std::function<void(const AttemptEnd&)> on_attempt_end;
};

// Runs the ranks to completion. Returns 0 when every rank exited 0, otherwise the first non-zero
// exit code of a rank in the last attempt (128 + signal number for a rank killed by a signal;
// after the launcher was interrupted, 143 when the ranks stopped cleanly), after logging a
// summary of every attempt. Throws core::Error(kUsage) for options that cannot work,
// core::Error(kSystem) when the OS refuses (socket, pipe, fork).
int launch_local(const LaunchOptions& options);

// A TCP port that is free on `addr` right now.
int64_t free_port(const std::string& addr);

}  // namespace ddpipe::dist
