#include "dist/launcher.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "core/error.h"
#include "test_util.h"

namespace ddpipe::dist {
namespace {

// The OS refusing the launcher (here: no file descriptor left for the port probe's socket) is a
// system error, exit code 6, not a storage error. In a child, whose limits this changes.
TEST(Launcher, OsFailureIsASystemError) {
  testing::TempDir dir;
  LaunchOptions o;
  o.argv = {"/bin/true"};
  o.error_dir = dir.path().string();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const rlimit none{0, 0};
    if (::setrlimit(RLIMIT_NOFILE, &none) != 0) ::_exit(90);
    try {
      launch_local(o);
      ::_exit(91);
    } catch (const core::Error& e) {
      const bool names_socket = std::strstr(e.what(), "socket") != nullptr;
      ::_exit(e.kind() == core::ErrorKind::kSystem && names_socket ? 0 : 92);
    } catch (...) {
      ::_exit(93);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "90: setrlimit failed, 91: no error, 92: not kSystem naming socket, 93: not core::Error";
}

// A rank that cannot be executed exits with the system error code, which is permanent.
TEST(Launcher, RankThatCannotBeExecutedExitsWithTheSystemCode) {
  testing::TempDir dir;
  LaunchOptions o;
  o.nproc = 2;
  o.max_restarts = 2;
  o.restart_delay_seconds = 0;
  o.argv = {(dir / "no-such-program").string()};
  o.error_dir = dir.path().string();
  EXPECT_EQ(launch_local(o), core::exit_code(core::ErrorKind::kSystem));
}

}  // namespace
}  // namespace ddpipe::dist
