#include "dist/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "supervisor/supervisor.h"

namespace ddpipe::dist {

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
  int64_t nproc = 0;
  int signal = 0;      // SIGINT/SIGTERM the launcher got during it
  std::string reason;  // from the failed rank's error file, if it wrote one
};

std::string error_file_of(const std::string& error_dir, int64_t rank) {
  return error_dir + "/rank_" + std::to_string(rank) + ".json";
}

int64_t pick_port(const LaunchOptions& o) {
  return o.master_port > 0 ? o.master_port : free_port(o.master_addr);
}

// Local rank `local` of an attempt with `nproc` local ranks, the rank contract in its env.
supervisor::ChildSpec rank_spec(const LaunchOptions& o, int64_t nproc, int64_t port,
                                int64_t restart, const std::string& error_dir, int64_t local) {
  const int64_t rank = o.node_rank * nproc + local;
  const std::string error_file = error_file_of(error_dir, rank);
  ::unlink(error_file.c_str());
  supervisor::ChildSpec spec;
  spec.name = "rank " + std::to_string(rank);
  spec.argv = o.argv;
  spec.env = {{"MASTER_ADDR", o.master_addr},
              {"MASTER_PORT", std::to_string(port)},
              {"WORLD_SIZE", std::to_string(o.nnodes * nproc)},
              {"RANK", std::to_string(rank)},
              {"LOCAL_RANK", std::to_string(local)},
              {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
              {"GROUP_RANK", std::to_string(o.node_rank)},
              {"DDPIPE_RESTART_COUNT", std::to_string(restart)},
              {"TORCHELASTIC_ERROR_FILE", error_file}};
  return spec;
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

// One run of the local group with `nproc` ranks, to its end (supervisor::Group).
Attempt run_group(const LaunchOptions& o, int64_t nproc, int64_t port, int64_t restart,
                  const std::string& error_dir, supervisor::Interrupts& interrupts) {
  supervisor::Group group(interrupts, "launch");
  for (int64_t local = 0; local < nproc; ++local) {
    group.start(rank_spec(o, nproc, port, restart, error_dir, local));
  }
  const supervisor::Outcome out = group.wait({o.grace_seconds, o.preempt_stop_seconds});
  Attempt a{out.code, -1, nproc, out.signal, ""};
  if (out.first_failed >= 0) {
    a.failed_rank = o.node_rank * nproc + out.first_failed;
    a.reason = failure_reason(error_dir, a.failed_rank, out.children[out.first_failed].status);
  } else if (out.signal) {
    a.reason = std::string("the launcher got SIG") + ::sigabbrev_np(out.signal) +
               " and passed it on to the ranks";
  }
  return a;
}

void report_attempt_end(const LaunchOptions& o, const AttemptEnd& end) {
  if (!o.on_attempt_end) return;
  try {
    o.on_attempt_end(end);
  } catch (const std::exception& e) {
    core::log::warn("launch", std::string("after the attempt: ") + e.what());
  }
}

// Whether the failed attempt `last` (the restart-th) is followed by another; says why not.
bool should_restart(const LaunchOptions& o, const Attempt& last, int64_t restart) {
  if (last.signal) {
    core::log::warn("launch", "the launcher was interrupted: not restarting",
                    {{"exit_code", last.code}});
    return false;
  }
  if (last.code < 128) {
    if (restart < o.max_restarts) {
      core::log::error("launch", "exit code " + std::to_string(last.code) +
                                     " is permanent (1-127): not restarting");
    }
    return false;
  }
  return restart < o.max_restarts;
}

// The local ranks of the next attempt: one fewer when the same rank failed first in the last two
// attempts of the same size (torchrun's elastic --nproc range), never below min_nproc, never on
// several nodes (their WORLD_SIZE would disagree).
int64_t next_nproc(const LaunchOptions& o, const std::vector<Attempt>& attempts) {
  const Attempt& last = attempts.back();
  if (o.min_nproc <= 0 || attempts.size() < 2 || last.nproc <= o.min_nproc) return last.nproc;
  const Attempt& before = attempts[attempts.size() - 2];
  if (last.failed_rank < 0 || before.failed_rank != last.failed_rank ||
      before.nproc != last.nproc) {
    return last.nproc;
  }
  const nlohmann::json fields{{"failed_rank", last.failed_rank},
                              {"nproc", last.nproc},
                              {"new_nproc", last.nproc - 1},
                              {"min_nproc", o.min_nproc}};
  if (o.nnodes > 1) {
    core::log::warn("launch",
                    "the same rank failed first twice in a row, but a group of several nodes "
                    "does not shrink (every node's WORLD_SIZE would have to change)",
                    fields);
    return last.nproc;
  }
  core::log::warn("launch",
                  "the same rank failed first twice in a row: restarting with one local rank "
                  "fewer",
                  fields);
  return last.nproc - 1;
}

// Runs the group until it succeeds, fails permanently, runs out of restarts or the launcher is
// interrupted (SIGINT/SIGTERM are passed on to the ranks meanwhile).
std::vector<Attempt> run_attempts(const LaunchOptions& o, const std::string& error_dir,
                                  int64_t first_port, supervisor::Interrupts& interrupts) {
  std::vector<Attempt> attempts;
  int64_t nproc = o.nproc;
  for (int64_t restart = 0;; ++restart) {
    const int64_t port = restart == 0 ? first_port : pick_port(o);
    core::log::info("launch", restart == 0 ? "starting local ranks" : "restarting the group",
                    {{"nproc", nproc},
                     {"nnodes", o.nnodes},
                     {"node_rank", o.node_rank},
                     {"master", o.master_addr + ":" + std::to_string(port)},
                     {"restart", restart}});
    attempts.push_back(run_group(o, nproc, port, restart, error_dir, interrupts));
    Attempt& last = attempts.back();
    if (last.code == 0) break;
    bool restarting = should_restart(o, last, restart);
    if (restarting && !interrupts.sleep(o.restart_delay_seconds)) {
      core::log::warn("launch", "interrupted before the restart: not restarting");
      last.signal = interrupts.received();
      restarting = false;
    }
    report_attempt_end(o, {restart, last.code, last.failed_rank, last.reason, restarting, nproc});
    if (!restarting) break;
    nproc = next_nproc(o, attempts);
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

  const int64_t first_port = pick_port(o);
  supervisor::Interrupts interrupts;  // from here on SIGINT/SIGTERM go to the ranks
  const std::vector<Attempt> attempts = run_attempts(o, error_dir, first_port, interrupts);
  const Attempt& last = attempts.back();
  if (attempts.size() > 1 || last.code != 0) {
    nlohmann::json summary = nlohmann::json::array();
    for (size_t i = 0; i < attempts.size(); ++i) {
      summary.push_back({{"attempt", i},
                         {"exit_code", attempts[i].code},
                         {"failed_rank", attempts[i].failed_rank},
                         {"nproc", attempts[i].nproc}});
    }
    core::log::info(
        "launch", last.code == 0 ? "job succeeded after restarts" : "job failed",
        {{"attempts", summary}, {"max_restarts", o.max_restarts}, {"last_error", last.reason}});
  }
  return last.code;
}

}  // namespace ddpipe::dist
