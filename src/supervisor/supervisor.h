// ddpipe::supervisor — the one place where ddpipe starts child processes and sees them to the end
// together: `ddpipe launch` (the ranks of a node, dist/launcher.h) and `ddpipe launch
// --from-pytorchjob` / `--from-trainjob` (the pods of a job, k8s/local_pods.h) are built on it.
//
//  - Interrupts: while one lives, SIGINT and SIGTERM sent to this process do not end it: they are
//    recorded and wake whoever waits (a self-pipe), and a Group waiting passes them on.
//  - Group: forks and executes children (argv, environment, an optional step in the child before
//    exec: namespaces, mounts, ...), then waits for all of them event-driven (one poll() on a
//    pidfd per child and the self-pipe; no sleeping loop). Two ways a group stops early:
//      * a child fails (exits non-zero or is killed) on its own: the others get SIGTERM, and
//        SIGKILL after StopPolicy::failure_grace_seconds;
//      * this process gets SIGINT or SIGTERM: every child gets the same signal, and SIGKILL after
//        StopPolicy::interrupt_grace_seconds (a training rank checkpoints on SIGTERM: this is its
//        time to do it and exit 143).
//  - exit_code: a wait status as an exit code (the code, or 128 + signal number).
//
// Nothing here is thread-safe; one Interrupts per process at a time. No libtorch.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ddpipe::supervisor {

// The exit code of a wait status: WEXITSTATUS, or 128 + the signal that killed it.
int exit_code(int wait_status) noexcept;

// Catches SIGINT and SIGTERM from construction to destruction, which restores the previous
// handlers. Throws core::Error(kSystem) when its pipe cannot be made, core::Error(kInternal) when
// another Interrupts lives.
class Interrupts {
 public:
  Interrupts();
  ~Interrupts();
  Interrupts(const Interrupts&) = delete;
  Interrupts& operator=(const Interrupts&) = delete;

  // The first SIGINT or SIGTERM caught, 0 while none was.
  int received() const noexcept;
  // Sleeps `seconds`, or less when a signal is (or was already) caught. Returns received() == 0.
  bool sleep(double seconds) const;
  // Readable while a caught signal is not yet passed on; take() empties it.
  int fd() const noexcept { return read_fd_; }
  // The signals caught since the last take(), in order.
  std::vector<int> take();

 private:
  int read_fd_ = -1;
};

// One child to start.
struct ChildSpec {
  std::string name;               // in logs and messages: "rank 1", "pod job-master-0"
  std::vector<std::string> argv;  // argv[0]: a path, or a name looked up on the child's PATH
  std::vector<std::pair<std::string, std::string>> env;  // set in the child, in this order
  bool inherit_env = true;  // false: `env` is the child's whole environment
  // Runs in the forked child before exec (after the signals are reset to their defaults). It
  // reports its own failures, normally by _exit; an exception it throws makes the child exit
  // with the system error code (6) after printing it.
  std::function<void()> in_child;
};

// How long stopping children may take before SIGKILL.
struct StopPolicy {
  double failure_grace_seconds = 10.0;    // after a child failed on its own (others: SIGTERM)
  double interrupt_grace_seconds = 10.0;  // after this process got SIGINT/SIGTERM (passed on)
};

// How one child ended.
struct ChildEnd {
  std::string name;
  int status = 0;  // the wait status
  int code = 0;    // exit_code(status)
};

// How a group ended.
struct Outcome {
  int code = 0;           // the first non-zero code in order of exit; 0 when every child exited 0
  int first_failed = -1;  // index of the child that failed on its own before any stop, or -1
  int signal = 0;         // the SIGINT/SIGTERM this process got while waiting, 0 if none
  std::vector<ChildEnd> children;  // by index (order of start)
};

// Children started one by one with start(), then waited for once with wait(). Messages and log
// lines name `component` (e.g. "launch"). A group destroyed with children still running (an
// exception between start and wait) kills them with SIGKILL and reaps them.
class Group {
 public:
  Group(Interrupts& interrupts, std::string component);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // Forks and executes `spec`; returns the child's pid. A child whose in_child step throws or
  // whose program cannot be executed exits with the system error code (6), saying why on
  // stderr. Throws core::Error(kSystem) when fork or pidfd_open fails.
  pid_t start(const ChildSpec& spec);

  // Waits until every child has ended, stopping them as the header says. `on_child_end`, if given,
  // is called for each child as it ends, with its index. Throws core::Error(kSystem) when poll
  // or waitpid fails (the children are then killed).
  Outcome wait(const StopPolicy& policy,
               const std::function<void(size_t, const ChildEnd&)>& on_child_end = {});

 private:
  struct Child {
    std::string name;
    pid_t pid = -1;
    int pidfd = -1;
    bool running = true;
  };
  struct Stopping;
  void signal_running(int sig);
  ChildEnd reap(Child& child);
  void kill_all() noexcept;
  void pass_on_interrupts(const StopPolicy& policy, Stopping& stop, Outcome& out);
  void on_end(size_t index, const ChildEnd& end, const StopPolicy& policy, Stopping& stop,
              Outcome& out);
  void kill_late(Stopping& stop);

  Interrupts& interrupts_;
  std::string component_;
  std::vector<Child> children_;
};

}  // namespace ddpipe::supervisor
