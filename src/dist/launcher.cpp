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

#include "core/error.h"
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
  if (fd < 0) core::fail_storage(std::string("socket: ") + std::strerror(errno));
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

int launch_local(const LaunchOptions& o) {
  if (o.argv.empty()) core::fail_usage("launch: no program to run");
  const int64_t port = o.master_port > 0 ? o.master_port : free_port(o.master_addr);
  core::log::info("launch", "starting local ranks",
                  {{"nproc", o.nproc}, {"master", o.master_addr + ":" + std::to_string(port)}});

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  std::map<pid_t, int64_t> ranks;
  for (int64_t r = 0; r < o.nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) core::fail_storage(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      std::vector<char*> args;
      for (auto& a : o.argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::fprintf(stderr, "launch: cannot execute %s: %s\n", args[0], std::strerror(errno));
      ::_exit(127);
    }
    ranks[pid] = r;
  }

  int result = 0;
  bool stopping = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  auto stop_all = [&](int sig) {
    for (auto& [pid, r] : ranks) ::kill(pid, sig);
  };
  while (!ranks.empty()) {
    if (g_forward_signal && !stopping) {
      core::log::warn("launch", "signal received; stopping every rank");
      stop_all(g_forward_signal);
      stopping = true;
      result = 128 + g_forward_signal;
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<int64_t>(o.grace_seconds * 1000));
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      int64_t rank = ranks[pid];
      ranks.erase(pid);
      int code = status_to_code(status);
      if (code != 0 && !stopping) {
        core::log::error("launch", "rank " + std::to_string(rank) + " failed with exit code " +
                                       std::to_string(code) + "; stopping the other ranks");
        result = code;
        stopping = true;
        stop_all(SIGTERM);
        deadline = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(o.grace_seconds * 1000));
      }
      continue;
    }
    if (stopping && std::chrono::steady_clock::now() > deadline) {
      stop_all(SIGKILL);
      deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  g_forward_signal = 0;
  return result;
}

}  // namespace ddpipe::dist
