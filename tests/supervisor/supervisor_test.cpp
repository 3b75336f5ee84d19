// The supervisor with real children (/bin/sh scripts): exit codes, signals, fail-fast stop,
// escalation to SIGKILL, SIGTERM to this process passed on, the step before exec, environment.
// Children that must reach a point before another acts on them say so with a file; no test
// depends on timing.
#include "supervisor/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"

namespace ddpipe::supervisor {
namespace {

ChildSpec sh(const std::string& name, const std::string& script) {
  ChildSpec c;
  c.name = name;
  c.argv = {"/bin/sh", "-c", script};
  return c;
}

// Waits in the shell until `file` exists (another child got where it must be).
std::string await(const std::filesystem::path& file) {
  return "while [ ! -e " + file.string() + " ]; do sleep 0.01; done; ";
}

// A child that exits 128 on SIGTERM (as a preempted rank does) after touching `file`; it touches
// `ready` once its trap is set, then runs `then` and waits.
std::string preemptible(const std::filesystem::path& ready, const std::filesystem::path& file,
                        const std::string& then = "") {
  return "trap ': > " + file.string() + "; exit 128' TERM; : > " + ready.string() + "; " + then +
         "while :; do sleep 0.05; done";
}

Outcome run(const std::vector<ChildSpec>& children, const StopPolicy& policy = {}) {
  Interrupts interrupts;
  Group group(interrupts, "test");
  for (const auto& c : children) group.start(c);
  return group.wait(policy);
}

TEST(Supervisor, EveryChildExitingZeroIsSuccess) {
  std::vector<size_t> ended;
  Interrupts interrupts;
  Group group(interrupts, "test");
  for (int i = 0; i < 3; ++i) group.start(sh("c" + std::to_string(i), "exit 0"));
  const Outcome out = group.wait({}, [&](size_t i, const ChildEnd&) { ended.push_back(i); });
  EXPECT_EQ(out.code, 0);
  EXPECT_EQ(out.first_failed, -1);
  EXPECT_EQ(out.signal, 0);
  ASSERT_EQ(out.children.size(), 3u);
  EXPECT_EQ(out.children[2].name, "c2");
  EXPECT_EQ(ended.size(), 3u);
}

TEST(Supervisor, ExitCodeIsTheChildsCodeOr128PlusItsSignal) {
  Outcome exited = run({sh("a", "exit 7")});
  EXPECT_EQ(exited.code, 7);
  EXPECT_EQ(exited.first_failed, 0);
  EXPECT_TRUE(WIFEXITED(exited.children[0].status));

  Outcome killed = run({sh("b", "kill -KILL $$")});
  EXPECT_EQ(killed.code, 128 + SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(killed.children[0].status));
  EXPECT_EQ(exit_code(killed.children[0].status), 137);

  EXPECT_EQ(run({sh("c", "exit 128")}).code, 128);
}

TEST(Supervisor, FailingChildStopsItsSiblingsWithSigterm) {
  const Outcome out = run({sh("long", "exec sleep 60"), sh("bad", "exit 5")});
  EXPECT_EQ(out.code, 5);
  EXPECT_EQ(out.first_failed, 1);
  EXPECT_EQ(out.children[0].code, 128 + SIGTERM);
  EXPECT_EQ(out.signal, 0);
}

TEST(Supervisor, ChildIgnoringSigtermIsKilledAfterTheGracePeriod) {
  testing::TempDir dir;
  // An ignored signal stays ignored across exec: sleep itself ignores SIGTERM.
  const Outcome out =
      run({sh("stubborn", "trap '' TERM; : > " + (dir / "ready").string() + "; exec sleep 60"),
           sh("bad", await(dir / "ready") + "exit 3")},
          {0.2, 0.2});
  EXPECT_EQ(out.code, 3);
  EXPECT_EQ(out.first_failed, 1);
  EXPECT_EQ(out.children[0].code, 128 + SIGKILL);
}

TEST(Supervisor, SigtermToTheSupervisorIsPassedOnToEveryChild) {
  testing::TempDir dir;
  // Child 1 sends SIGTERM to its parent (this process) once both are ready for it.
  const Outcome out = run({sh("r0", preemptible(dir / "ready0", dir / "term0")),
                           sh("r1", preemptible(dir / "ready1", dir / "term1",
                                                await(dir / "ready0") + "kill -TERM $PPID; "))});
  EXPECT_EQ(out.signal, SIGTERM);
  EXPECT_EQ(out.first_failed, -1);
  EXPECT_EQ(out.code, 128);  // the children's code: they stopped as asked
  EXPECT_EQ(out.children[0].code, 128);
  EXPECT_EQ(out.children[1].code, 128);
  EXPECT_TRUE(std::filesystem::exists(dir / "term0"));
  EXPECT_TRUE(std::filesystem::exists(dir / "term1"));
}

TEST(Supervisor, ChildIgnoringAPassedOnSigtermIsKilledAfterTheInterruptGrace) {
  testing::TempDir dir;
  const Outcome out =
      run({sh("stubborn", "trap '' TERM; : > " + (dir / "ready").string() + "; exec sleep 60"),
           sh("sender", await(dir / "ready") +
                            preemptible(dir / "ready2", dir / "term", "kill -TERM $PPID; "))},
          {60, 0.2});
  EXPECT_EQ(out.signal, SIGTERM);
  EXPECT_EQ(out.children[0].code, 128 + SIGKILL);
  EXPECT_EQ(out.children[1].code, 128);
}

TEST(Supervisor, StepInTheChildRunsBeforeExecWithTheGivenEnvironmentOnly) {
  testing::TempDir dir;
  ChildSpec c = sh("env", "pwd > out; echo \"$FOO\" >> out; [ -z \"$HOME\" ]");
  c.argv[0] = "sh";  // looked up on the child's PATH
  c.env = {{"PATH", "/usr/bin:/bin"}, {"FOO", "bar"}};
  c.inherit_env = false;
  const std::string where = dir.path().string();
  c.in_child = [where] {
    if (::chdir(where.c_str()) != 0) ::_exit(90);
  };
  ASSERT_EQ(run({c}).code, 0) << "90: chdir failed, 1: HOME was passed on";
  EXPECT_EQ(core::read_file(dir / "out"), where + "\nbar\n");
}

TEST(Supervisor, InheritedEnvironmentIsOverriddenByTheChildsEntries) {
  ::setenv("DDPIPE_SUPERVISOR_TEST", "parent", 1);
  ChildSpec c = sh("env", "[ \"$DDPIPE_SUPERVISOR_TEST\" = child ] && [ -n \"$PATH\" ]");
  c.env = {{"DDPIPE_SUPERVISOR_TEST", "child"}};
  EXPECT_EQ(run({c}).code, 0);
  ::unsetenv("DDPIPE_SUPERVISOR_TEST");
}

TEST(Supervisor, ChildThatCannotStartExitsWithTheSystemCode) {
  testing::TempDir dir;
  ChildSpec missing;
  missing.name = "missing";
  missing.argv = {(dir / "no-such-program").string()};
  ChildSpec throwing = sh("throwing", "exit 0");
  throwing.in_child = [] { throw std::runtime_error("no namespace"); };
  const int system = core::exit_code(core::ErrorKind::kSystem);
  EXPECT_EQ(run({missing}).code, system);
  EXPECT_EQ(run({throwing}).code, system);
}

TEST(Supervisor, InterruptsRecordTheFirstSignalAndRestoreTheHandlers) {
  struct sigaction before {};
  ::sigaction(SIGTERM, nullptr, &before);
  {
    Interrupts interrupts;
    EXPECT_EQ(interrupts.received(), 0);
    EXPECT_TRUE(interrupts.sleep(0.01));
    EXPECT_EQ(testing::error_of(core::ErrorKind::kInternal, [] { Interrupts second; }).empty(),
              false);
    ::raise(SIGTERM);
    ::raise(SIGINT);
    EXPECT_EQ(interrupts.received(), SIGTERM);
    EXPECT_FALSE(interrupts.sleep(60));  // returns at once: a signal was caught
    EXPECT_EQ(interrupts.take(), (std::vector<int>{SIGTERM, SIGINT}));
  }
  struct sigaction after {};
  ::sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

}  // namespace
}  // namespace ddpipe::supervisor
