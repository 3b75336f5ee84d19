#include "test_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"

namespace ddpipe::testing {
namespace {

// Tests read ddpipe's info-level log lines ("resuming from checkpoint", …): whatever the
// caller's DDPIPE_LOG_LEVEL, the processes the tests start log at info.
const bool kInfoLogs = [] { return setenv("DDPIPE_LOG_LEVEL", "info", 1) == 0; }();

}  // namespace

CommandResult run_command(const std::string& command) {
  CommandResult r;
  std::string cmd = command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string ddpipe_binary() { return DDPIPE_BINARY; }

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("DDPIPE_SHARED_DIR")) return env;
  std::filesystem::path p = std::filesystem::path(DDPIPE_SOURCE_DIR).parent_path() / "shared";
  return std::filesystem::is_directory(p) ? p : std::filesystem::path();
}

bool python_torch_available() {
  static int cached = -1;
  if (cached < 0) {
    cached = run_command("/usr/bin/python3 -c 'import torch' >/dev/null").exit_code == 0;
  }
  return cached == 1;
}

std::string error_of(core::ErrorKind kind, const std::function<void()>& f) {
  try {
    f();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no core::Error thrown";
  return "";
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::ifstream in("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                   "/children");
  for (pid_t p; in >> p;) out.push_back(p);
  return out;
}

pid_t start_background(const std::string& command, const std::filesystem::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd = "exec " + command + " > " + log.string() + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace ddpipe::testing
