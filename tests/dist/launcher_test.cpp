#include "dist/launcher.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
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

// A fake rank: /bin/sh running `body` with a trap that makes SIGTERM exit 128 (as a preempted
// rank does) after `on_term`; every rank appends "<restart> <local rank> <world size>" to
// `dir`/starts first (unless SIGTERM ends it even earlier). Returns the program's argv. Waiting
// ranks sleep in short steps, so that nothing outlives them.
std::vector<std::string> fake_rank(const testing::TempDir& dir, const std::string& body,
                                   const std::string& on_term = "") {
  const std::string script = (dir / "rank.sh").string();
  core::write_file_atomic(script, "trap '" + on_term + "exit 128' TERM\n" +
                                      "echo \"$DDPIPE_RESTART_COUNT $LOCAL_RANK $WORLD_SIZE\" >> " +
                                      (dir / "starts").string() + "\n" + "cd " +
                                      dir.path().string() + "\n" + body + "\n");
  return {"/bin/sh", script};
}

std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The lines of `dir`/starts of local rank 1 ("<restart> 1 <world size>"), which always gets
// there in these tests (a rank stopped at once may not).
std::vector<std::string> starts_of_rank_1(const testing::TempDir& dir) {
  std::vector<std::string> out;
  for (const auto& line : lines_of(dir / "starts")) {
    if (line.find(" 1 ") != std::string::npos) out.push_back(line);
  }
  return out;
}

// Fails (retryably) while it is local rank 1 of two; alone it succeeds. Rank 0 waits to be
// stopped.
const char* kFailsAsSecondOfTwo =
    "if [ \"$WORLD_SIZE\" = 1 ]; then exit 0; fi\n"
    "if [ \"$LOCAL_RANK\" = 1 ]; then exit 128; fi\n"
    "while :; do sleep 0.05; done";

LaunchOptions options_for(const std::vector<std::string>& argv, const testing::TempDir& dir,
                          std::vector<AttemptEnd>& ends) {
  LaunchOptions o;
  o.nproc = 2;
  o.max_restarts = 3;
  o.restart_delay_seconds = 0;
  o.argv = argv;
  o.error_dir = (dir / "errors").string();
  o.on_attempt_end = [&ends](const AttemptEnd& e) { ends.push_back(e); };
  return o;
}

// The same local rank failing first in two attempts in a row: the next attempt has one rank
// fewer (down to min_nproc), which succeeds here.
TEST(Launcher, SameRankFailingTwiceInARowShrinksTheGroupToMinNproc) {
  testing::TempDir dir;
  std::vector<AttemptEnd> ends;
  LaunchOptions o = options_for(fake_rank(dir, kFailsAsSecondOfTwo), dir, ends);
  o.min_nproc = 1;
  EXPECT_EQ(launch_local(o), 0);
  ASSERT_EQ(ends.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(ends[i].attempt, i);
    EXPECT_EQ(ends[i].nproc, 2);
    EXPECT_EQ(ends[i].failed_rank, 1);
    EXPECT_EQ(ends[i].code, 128);
    EXPECT_TRUE(ends[i].restarting);
  }
  EXPECT_EQ(starts_of_rank_1(dir), (std::vector<std::string>{"0 1 2", "1 1 2"}));
  EXPECT_EQ(lines_of(dir / "starts").back(), "2 0 1");  // the third attempt: rank 0 alone
}

TEST(Launcher, WithoutMinNprocTheGroupKeepsItsSizeAndFailsAfterTheRestarts) {
  testing::TempDir dir;
  std::vector<AttemptEnd> ends;
  EXPECT_EQ(launch_local(options_for(fake_rank(dir, kFailsAsSecondOfTwo), dir, ends)), 128);
  ASSERT_EQ(ends.size(), 4u);
  for (const auto& e : ends) EXPECT_EQ(e.nproc, 2);
  EXPECT_TRUE(ends[2].restarting);
  EXPECT_FALSE(ends[3].restarting);
  EXPECT_EQ(starts_of_rank_1(dir), (std::vector<std::string>{"0 1 2", "1 1 2", "2 1 2", "3 1 2"}));
}

// Several nodes never shrink: the other nodes' WORLD_SIZE would disagree.
TEST(Launcher, GroupOfSeveralNodesDoesNotShrink) {
  testing::TempDir dir;
  std::vector<AttemptEnd> ends;
  LaunchOptions o = options_for(fake_rank(dir, kFailsAsSecondOfTwo), dir, ends);
  o.min_nproc = 1;
  o.nnodes = 2;  // as node 0, with no node 1: the fake ranks need no rendezvous
  o.master_port = free_port("127.0.0.1");
  o.max_restarts = 2;
  EXPECT_EQ(launch_local(o), 128);
  ASSERT_EQ(ends.size(), 3u);
  for (const auto& e : ends) EXPECT_EQ(e.nproc, 2);
}

// SIGTERM to one rank alone is that rank exiting 128: an ordinary retryable failure.
TEST(Launcher, SigtermToOneRankIsARetryableFailure) {
  testing::TempDir dir;
  std::vector<AttemptEnd> ends;
  const char* body =
      "if [ \"$DDPIPE_RESTART_COUNT$LOCAL_RANK\" = 01 ]; then kill -TERM $$; fi\n"
      "if [ \"$LOCAL_RANK\" = 0 ] && [ \"$DDPIPE_RESTART_COUNT\" = 0 ]; then\n"
      "  while :; do sleep 0.05; done\n"
      "fi\n"
      "exit 0";
  EXPECT_EQ(launch_local(options_for(fake_rank(dir, body), dir, ends)), 0);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].failed_rank, 1);
  EXPECT_EQ(ends[0].code, 128);
  EXPECT_TRUE(ends[0].restarting);
}

// SIGTERM to the launcher (preemption): passed on to every rank, which gets preempt_stop_seconds
// (not the short grace_seconds) to stop; no restart; the launcher returns the ranks' code.
TEST(Launcher, SigtermToTheLauncherIsPassedOnAndEndsTheJobWithTheRanksCode) {
  testing::TempDir dir;
  std::vector<AttemptEnd> ends;
  // Each rank says it is ready once its trap is set; rank 1 then sends SIGTERM to its parent,
  // the launcher (this process). On SIGTERM a rank takes a moment (its checkpoint) and exits 128.
  const char* body =
      ": > ready.$LOCAL_RANK\n"
      "if [ \"$LOCAL_RANK\" = 1 ]; then\n"
      "  while [ ! -e ready.0 ]; do sleep 0.01; done\n"
      "  kill -TERM $PPID\n"
      "fi\n"
      "while :; do sleep 0.05; done";
  LaunchOptions o =
      options_for(fake_rank(dir, body, "sleep 0.2; : > stopped.$LOCAL_RANK; "), dir, ends);
  o.grace_seconds = 0;  // would kill the ranks at once
  o.preempt_stop_seconds = 60;
  EXPECT_EQ(launch_local(o), 128);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_FALSE(ends[0].restarting);
  EXPECT_EQ(ends[0].failed_rank, -1);
  EXPECT_EQ(ends[0].code, 128);
  EXPECT_NE(ends[0].reason.find("SIGTERM"), std::string::npos) << ends[0].reason;
  EXPECT_TRUE(std::filesystem::exists(dir / "stopped.0"));
  EXPECT_TRUE(std::filesystem::exists(dir / "stopped.1"));
  EXPECT_EQ(lines_of(dir / "starts").size(), 2u);
}

// SIGTERM to the launcher between attempts (during the restart delay): no further attempt.
TEST(Launcher, SigtermDuringTheRestartDelayEndsTheJob) {
  testing::TempDir dir;
  std::vector<AttemptEnd> ends;
  // Rank 1 fails and leaves a helper that sends SIGTERM to the launcher once both ranks of the
  // attempt are reaped (kill -0 fails), that is, when the launcher is between attempts.
  const char* body =
      "if [ \"$DDPIPE_RESTART_COUNT\" != 0 ]; then exit 0; fi\n"
      "if [ \"$LOCAL_RANK\" = 0 ]; then echo $$ > pid.tmp; mv pid.tmp pid0; while :; do sleep "
      "0.05; done; fi\n"
      "while [ ! -e pid0 ]; do sleep 0.01; done\n"
      "launcher=$PPID; me=$$; r0=$(cat pid0)\n"
      "(while kill -0 $me 2>/dev/null || kill -0 $r0 2>/dev/null; do sleep 0.01; done\n"
      " kill -TERM $launcher) >/dev/null 2>&1 &\n"
      "exit 128";
  LaunchOptions o = options_for(fake_rank(dir, body), dir, ends);
  o.restart_delay_seconds = 60;
  EXPECT_EQ(launch_local(o), 128);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_FALSE(ends[0].restarting);
  EXPECT_EQ(ends[0].failed_rank, 1);
  EXPECT_EQ(lines_of(dir / "starts").size(), 2u);
}

}  // namespace
}  // namespace ddpipe::dist
