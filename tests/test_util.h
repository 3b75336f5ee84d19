// Helpers shared by the tests: temporary folders, running the ddpipe binary, ../shared, expected
// errors.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "core/error.h"
#include "core/fs.h"

namespace ddpipe::testing {

// A fresh temporary folder, removed with its content when the object goes away.
class TempDir : public core::TempDir {
 public:
  TempDir() : core::TempDir("ddpipe-test") {}
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command, capturing its output.
CommandResult run_command(const std::string& command);

// Absolute path of the built ddpipe binary.
std::string ddpipe_binary();

// ../shared beside the checkout, or "" when absent (tests then GTEST_SKIP with a message).
std::filesystem::path shared_dir();

// /usr/bin/python3 with torch importable, or false.
bool python_torch_available();

// Runs `f`, which must throw core::Error of `kind`, and returns its message. Records a gtest
// failure (and returns "") when `f` throws nothing or an error of another kind.
std::string error_of(core::ErrorKind kind, const std::function<void()>& f);
inline std::string usage_error(const std::function<void()>& f) {
  return error_of(core::ErrorKind::kUsage, f);
}

// The process ids of `parent`'s children (/proc/<pid>/task/<pid>/children).
std::vector<pid_t> children_of(pid_t parent);

// Runs a shell command in the background, its output in `log`; the pid is the command's own
// (sh execs it).
pid_t start_background(const std::string& command, const std::filesystem::path& log);

// Waits for `pid`: its exit code, or 128 + the signal that killed it.
int wait_exit(pid_t pid);

}  // namespace ddpipe::testing
