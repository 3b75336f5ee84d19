// Group: fork + exec with everything the child needs built before fork, a pidfd per child, and
// one poll() over the pidfds and the Interrupts pipe with the SIGKILL deadline as its timeout.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "supervisor/supervisor.h"

extern char** environ;

namespace ddpipe::supervisor {
namespace {

using Clock = std::chrono::steady_clock;

// The raw system calls: glibc 2.36's <sys/pidfd.h> declares them without extern "C".
int open_pidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
void send_signal(int pidfd, int sig) { ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0); }

// What the child needs, built before fork: after it, the child only calls into the kernel (and
// the caller's in_child step).
struct Exec {
  std::string program;  // argv[0], or what it is on the child's PATH
  std::vector<std::string> argv_text, env_text;
  std::vector<char*> argv, envp;
  std::string who;             // "<component>: <name>", what its messages start with
  std::string cannot_execute;  // "cannot execute <argv[0]>"
  int failed_code = core::exit_code(core::ErrorKind::kSystem);
};

std::vector<std::string> child_env(const ChildSpec& spec) {
  std::vector<std::string> out;
  auto set = [&out](const std::string& entry) {
    const size_t equals = entry.find('=');
    if (equals == std::string::npos) return;  // not NAME=value: nothing a child could read
    const std::string name = entry.substr(0, equals + 1);
    for (auto& e : out) {
      if (e.rfind(name, 0) == 0) {
        e = entry;
        return;
      }
    }
    out.push_back(entry);
  };
  if (spec.inherit_env) {
    for (char** e = environ; e && *e; ++e) set(*e);
  }
  for (const auto& [k, v] : spec.env) set(k + "=" + v);
  return out;
}

// argv[0] as execvp would find it, but on the child's PATH (not this process's).
std::string find_program(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    const std::string dir = end > start ? path.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return name;  // execve fails with ENOENT, which the child reports
}

Exec prepare(const ChildSpec& spec, const std::string& component) {
  if (spec.argv.empty()) {
    throw core::Error(core::ErrorKind::kInternal, component + ": " + spec.name + ": no program");
  }
  Exec x;
  x.argv_text = spec.argv;
  x.env_text = child_env(spec);
  x.program = find_program(spec.argv[0], x.env_text);
  for (auto& a : x.argv_text) x.argv.push_back(a.data());
  x.argv.push_back(nullptr);
  for (auto& e : x.env_text) x.envp.push_back(e.data());
  x.envp.push_back(nullptr);
  x.who = component + ": " + spec.name;
  x.cannot_execute = "cannot execute " + spec.argv[0];
  return x;
}

void write_stderr(const std::string& who, const std::string& what, const char* why) {
  const std::string m = who + ": " + what + ": " + why + "\n";
  (void)!::write(2, m.data(), m.size());
}

// In the forked child: default signal handling (the mask as before fork), the caller's step,
// exec. Never returns.
[[noreturn]] void become_child(const ChildSpec& spec, const Exec& x, const sigset_t& mask) {
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::pthread_sigmask(SIG_SETMASK, &mask, nullptr);
  if (spec.in_child) {
    try {
      spec.in_child();
    } catch (const std::exception& e) {
      write_stderr(x.who, "setting up the child", e.what());
      ::_exit(x.failed_code);
    } catch (...) {
      write_stderr(x.who, "setting up the child", "unknown error");
      ::_exit(x.failed_code);
    }
  }
  ::execve(x.program.c_str(), x.argv.data(), x.envp.data());
  write_stderr(x.who, x.cannot_execute, std::strerror(errno));
  ::_exit(x.failed_code);
}

int milliseconds_until(Clock::time_point t) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

Clock::time_point after(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

int exit_code(int wait_status) noexcept {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

Group::Group(Interrupts& interrupts, std::string component)
    : interrupts_(interrupts), component_(std::move(component)) {}

Group::~Group() { kill_all(); }

pid_t Group::start(const ChildSpec& spec) {
  const Exec x = prepare(spec, component_);
  // Blocked across fork so that a signal cannot reach the child while it still has our handler.
  sigset_t block, before;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &block, &before);
  const pid_t pid = ::fork();
  if (pid == 0) become_child(spec, x, before);
  const int fork_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  if (pid < 0) {
    errno = fork_error;
    core::fail_system(component_ + ": fork of " + spec.name);
  }
  const int pidfd = open_pidfd(pid);
  if (pidfd < 0) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    errno = error;
    core::fail_system(component_ + ": pidfd_open of " + spec.name);
  }
  children_.push_back({spec.name, pid, pidfd, true});
  return pid;
}

void Group::signal_running(int sig) {
  for (auto& c : children_) {
    if (c.running) send_signal(c.pidfd, sig);
  }
}

ChildEnd Group::reap(Child& child) {
  int status = 0;
  pid_t got = -1;
  while ((got = ::waitpid(child.pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (got < 0) core::fail_system(component_ + ": waitpid of " + child.name);
  ::close(child.pidfd);
  child.pidfd = -1;
  child.running = false;
  return {child.name, status, exit_code(status)};
}

void Group::kill_all() noexcept {
  for (auto& c : children_) {
    if (!c.running) continue;
    ::kill(c.pid, SIGKILL);
    ::waitpid(c.pid, nullptr, 0);
    ::close(c.pidfd);
    c.running = false;
  }
}

// The state of one wait(): when the group is being stopped, and by when it must be gone.
struct Group::Stopping {
  bool stopping = false;
  std::optional<Clock::time_point> kill_at;
  void begin(double grace_seconds) {
    if (stopping) return;
    stopping = true;
    kill_at = after(grace_seconds);
  }
};

void Group::pass_on_interrupts(const StopPolicy& policy, Stopping& stop, Outcome& out) {
  for (const int sig : interrupts_.take()) {
    if (out.signal == 0) {
      out.signal = sig;
      core::log::warn(
          component_,
          std::string("SIG") + ::sigabbrev_np(sig) + " received; passing it on to every child",
          {{"signal", sig}, {"sigkill_after_s", policy.interrupt_grace_seconds}});
    }
    signal_running(sig);
    stop.begin(policy.interrupt_grace_seconds);
  }
}

void Group::on_end(size_t index, const ChildEnd& end, const StopPolicy& policy, Stopping& stop,
                   Outcome& out) {
  out.children[index] = end;
  if (end.code == 0) return;
  if (out.code == 0) out.code = end.code;
  if (stop.stopping) return;
  out.first_failed = static_cast<int>(index);
  core::log::error(component_,
                   end.name + " failed with exit code " + std::to_string(end.code) +
                       "; stopping the others with SIGTERM",
                   {{"sigkill_after_s", policy.failure_grace_seconds}});
  signal_running(SIGTERM);
  stop.begin(policy.failure_grace_seconds);
}

void Group::kill_late(Stopping& stop) {
  if (!stop.kill_at || Clock::now() < *stop.kill_at) return;
  nlohmann::json late = nlohmann::json::array();
  for (const auto& c : children_) {
    if (c.running) late.push_back(c.name);
  }
  core::log::warn(component_, "still running after the grace period: SIGKILL",
                  {{"children", late}});
  signal_running(SIGKILL);
  stop.kill_at.reset();
}

Outcome Group::wait(const StopPolicy& policy,
                    const std::function<void(size_t, const ChildEnd&)>& on_child_end) {
  Outcome out;
  out.children.resize(children_.size());
  Stopping stop;
  try {
    for (;;) {
      std::vector<pollfd> fds{{interrupts_.fd(), POLLIN, 0}};
      std::vector<size_t> index;  // of fds[i + 1]
      for (size_t i = 0; i < children_.size(); ++i) {
        if (!children_[i].running) continue;
        fds.push_back({children_[i].pidfd, POLLIN, 0});
        index.push_back(i);
      }
      if (index.empty()) break;
      const int timeout = stop.kill_at ? milliseconds_until(*stop.kill_at) : -1;
      if (::poll(fds.data(), fds.size(), timeout) < 0) {
        if (errno == EINTR) continue;
        core::fail_system(component_ + ": poll");
      }
      if (fds[0].revents) pass_on_interrupts(policy, stop, out);
      for (size_t k = 0; k < index.size(); ++k) {
        if (!fds[k + 1].revents) continue;
        const ChildEnd end = reap(children_[index[k]]);
        if (on_child_end) on_child_end(index[k], end);
        on_end(index[k], end, policy, stop, out);
      }
      kill_late(stop);
    }
  } catch (...) {
    kill_all();
    throw;
  }
  return out;
}

}  // namespace ddpipe::supervisor
