#include "dist/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

namespace ddpipe::dist {
namespace {

volatile sig_atomic_t g_forward_signal = 0;
void on_signal(int sig) { g_forward_signal = sig; }

int status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int64_t free_port(const std::string& addr) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) core::fail_system("socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  if (::inet_pton(AF_INET, addr == "localhost" ? "127.0.0.1" : addr.c_str(), &sa.sin_addr) != 1) {
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
  }
  socklen_t len = sizeof sa;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    ::close(fd);
    core::fail_usage("cannot find a free port on " + addr + ": " + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

namespace {

struct Attempt {
  int code = 0;
  int64_t failed_rank = -1;
  std::string reason;  // from the failed rank's error file, if it wrote one
};

std::string error_file_of(const std::string& error_dir, int64_t rank) {
  return error_dir + "/rank_" + std::to_string(rank) + ".json";
}

// Forks and execs local rank `local` with the rank contract in its environment. A child that
// cannot execute the program exits with the system error code (6).
pid_t start_rank(const LaunchOptions& o, int64_t port, int64_t restart,
                 const std::string& error_dir, int64_t local) {
  const int64_t rank = o.node_rank * o.nproc + local;
  const std::string error_file = error_file_of(error_dir, rank);
  ::unlink(error_file.c_str());
  const int exec_failed = core::exit_code(core::ErrorKind::kSystem);
  pid_t pid = ::fork();
  if (pid < 0) core::fail_system("launch: fork of rank " + std::to_string(rank));
  if (pid > 0) return pid;
  ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(o.nnodes * o.nproc).c_str(), 1);
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
  ::setenv("GROUP_RANK", std::to_string(o.node_rank).c_str(), 1);
  ::setenv("DDPIPE_RESTART_COUNT", std::to_string(restart).c_str(), 1);
  ::setenv("TORCHELASTIC_ERROR_FILE", error_file.c_str(), 1);
  std::vector<char*> args;
  for (auto& a : o.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  std::fprintf(stderr, "launch: cannot execute %s: %s\n", args[0], std::strerror(errno));
  ::_exit(exec_failed);
}

// Why `rank` failed: its error file, else how it ended.
std::string failure_reason(const std::string& error_dir, int64_t rank, int status) {
  std::ifstream in(error_file_of(error_dir, rank));
  std::stringstream text;
  text << in.rdbuf();
  if (!text.str().empty()) return text.str();
  return WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                             : "no error file";
}

// Waits for every rank; the first failure (or a forwarded signal) stops the others: SIGTERM,
// then SIGKILL after the grace period.
Attempt wait_for_group(const LaunchOptions& o, std::map<pid_t, int64_t> ranks,
                       const std::string& error_dir) {
  Attempt result;
  bool stopping = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  auto stop_all = [&](int sig) {
    for (auto& [pid, r] : ranks) ::kill(pid, sig);
  };
  auto start_stopping = [&] {
    stopping = true;
    deadline = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int64_t>(o.grace_seconds * 1000));
  };
  while (!ranks.empty()) {
    if (g_forward_signal && !stopping) {
      core::log::warn("launch", "signal received; stopping every rank");
      stop_all(g_forward_signal);
      result.code = 128 + g_forward_signal;
      result.reason = "launcher interrupted";
      start_stopping();
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno != EINTR) core::fail_system("launch: waitpid");
    if (pid > 0) {
      int64_t rank = ranks[pid];
      ranks.erase(pid);
      int code = status_to_code(status);
      if (code != 0 && !stopping) {
        result.code = code;
        result.failed_rank = rank;
        result.reason = failure_reason(error_dir, rank, status);
        core::log::error("launch", "rank " + std::to_string(rank) + " failed with exit code " +
                                       std::to_string(code) + "; stopping the other ranks");
        stop_all(SIGTERM);
        start_stopping();
      }
      continue;
    }
    if (stopping && std::chrono::steady_clock::now() > deadline) {
      stop_all(SIGKILL);
      deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return result;
}

// One run of the local group.
Attempt run_group(const LaunchOptions& o, int64_t port, int64_t restart,
                  const std::string& error_dir) {
  std::map<pid_t, int64_t> ranks;
  try {
    for (int64_t local = 0; local < o.nproc; ++local) {
      ranks[start_rank(o, port, restart, error_dir, local)] = o.node_rank * o.nproc + local;
    }
  } catch (...) {  // the OS refused a rank: the group cannot form, stop the ones started
    for (auto& [pid, rank] : ranks) ::kill(pid, SIGKILL);
    for (auto& [pid, rank] : ranks) ::waitpid(pid, nullptr, 0);
    throw;
  }
  return wait_for_group(o, std::move(ranks), error_dir);
}

void report_attempt_end(const LaunchOptions& o, const AttemptEnd& end) {
  if (!o.on_attempt_end) return;
  try {
    o.on_attempt_end(end);
  } catch (const std::exception& e) {
    core::log::warn("launch", std::string("after the attempt: ") + e.what());
  }
}

// Runs the group until it succeeds, fails permanently, runs out of restarts or is interrupted,
// with SIGINT and SIGTERM forwarded to the ranks meanwhile.
std::vector<Attempt> run_attempts(const LaunchOptions& o, const std::string& error_dir) {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct RestoreSignals {  // also when a system error is thrown
    struct sigaction i {
    }, t{};
    ~RestoreSignals() {
      sigaction(SIGINT, &i, nullptr);
      sigaction(SIGTERM, &t, nullptr);
      g_forward_signal = 0;
    }
  } restore;
  sigaction(SIGINT, &sa, &restore.i);
  sigaction(SIGTERM, &sa, &restore.t);

  std::vector<Attempt> attempts;
  for (int64_t restart = 0;; ++restart) {
    const int64_t port = o.master_port > 0 ? o.master_port : free_port(o.master_addr);
    core::log::info("launch", restart == 0 ? "starting local ranks" : "restarting the group",
                    {{"nproc", o.nproc},
                     {"nnodes", o.nnodes},
                     {"node_rank", o.node_rank},
                     {"master", o.master_addr + ":" + std::to_string(port)},
                     {"restart", restart}});
    attempts.push_back(run_group(o, port, restart, error_dir));
    const Attempt& last = attempts.back();
    if (last.code == 0) break;
    const bool permanent = last.code < 128;
    const bool restarting = !permanent && restart < o.max_restarts && !g_forward_signal;
    report_attempt_end(o, {restart, last.code, last.failed_rank, last.reason, restarting});
    if (!restarting) {
      if (permanent && restart < o.max_restarts) {
        core::log::error("launch", "exit code " + std::to_string(last.code) +
                                       " is permanent (1-127): not restarting");
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.restart_delay_seconds));
  }
  return attempts;
}

}  // namespace

int launch_local(const LaunchOptions& o) {
  if (o.argv.empty()) core::fail_usage("launch: no program to run");
  if (o.nnodes > 1 && o.master_port <= 0) {
    core::fail_usage("launch: --master-port must be given when --nnodes > 1");
  }
  std::string error_dir = o.error_dir;
  if (error_dir.empty()) error_dir = core::make_temp_dir("ddpipe-launch").string();
  std::filesystem::create_directories(error_dir);

  const std::vector<Attempt> attempts = run_attempts(o, error_dir);
  const Attempt& last = attempts.back();
  if (attempts.size() > 1 || last.code != 0) {
    nlohmann::json summary = nlohmann::json::array();
    for (size_t i = 0; i < attempts.size(); ++i) {
      summary.push_back({{"attempt", i},
                         {"exit_code", attempts[i].code},
                         {"failed_rank", attempts[i].failed_rank}});
    }
    core::log::info(
        "launch", last.code == 0 ? "job succeeded after restarts" : "job failed",
        {{"attempts", summary}, {"max_restarts", o.max_restarts}, {"last_error", last.reason}});
  }
  return last.code;
}

}  // namespace ddpipe::dist
