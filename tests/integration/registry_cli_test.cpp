// The model registry through the ddpipe binary on a local store: the commands, processes racing
// on one alias, `ddpipe run` with registry.promote while `ddpipe serve --version production`
// follows the alias, and checkpoint.keep_last in a run that is killed and resumed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "core/fs.h"
#include "registry_cli_cases.h"
#include "storage/local_store.h"

namespace ddpipe {
namespace {

using nlohmann::json;
using testing::run_command;

TEST(RegistryCli, PromoteGateHistoryRollbackDiffRmGc) {
  testing::TempDir dir;
  storage::LocalStore store(dir / "store");
  testing::check_registry_commands({store, (dir / "store").string(), ""});
}

TEST(RegistryCli, ConcurrentPromotionProcessesOneWinsNothingLost) {
  testing::TempDir dir;
  storage::LocalStore store(dir / "store");
  for (int round = 0; round < 3; ++round) {
    testing::check_concurrent_promotions({store, (dir / "store").string(), ""}, 4);
    for (const auto& o : store.list("models/race/")) store.remove(o.key);
  }
}

std::string tiny_job(const std::filesystem::path& store, const std::string& extra) {
  return testing::tiny_job(store.string(), "", store.parent_path() / "cache", extra);
}

// The version `ddpipe serve` on `port` serves (GET /v2/models/tiny), or "".
std::string served_version(int port) {
  auto r = run_command("curl -s -m 5 http://127.0.0.1:" + std::to_string(port) + "/v2/models/tiny");
  try {
    return json::parse(r.output)["versions"][0].get<std::string>();
  } catch (const json::exception&) {
    return "";
  }
}

// `ddpipe serve` as a child; its log in a file; the port from the "listening" line.
struct Server {
  pid_t pid = -1;
  std::filesystem::path log;
  int port = 0;
  Server(const std::filesystem::path& store, std::filesystem::path log_path) : log(log_path) {
    pid = fork();
    if (pid == 0) {
      const std::string cmd = "DDPIPE_LOG_LEVEL=info exec " + testing::ddpipe_binary() +
                              " serve --store " + store.string() +
                              " --model tiny --version production --port 0 --set serve.poll_s=0.2"
                              " 2>" +
                              log.string();
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 600 && port == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ifstream in(log);
      for (std::string line; std::getline(in, line);) {
        if (line.find("\"msg\":\"listening\"") != std::string::npos)
          port = json::parse(line)["port"];
      }
    }
  }
  ~Server() {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
  }
};

TEST(RegistryCli, RunPromotesOnlyABetterVersionAndServeFollowsTheAlias) {
  testing::TempDir dir;
  auto good = run_command(tiny_job(dir / "store", "--epochs 2"));
  ASSERT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(good.output.find("does not exist yet: the candidate is promoted"), std::string::npos)
      << good.output;
  storage::LocalStore store(dir / "store");
  registry::Registry reg(store);
  const std::string v1 = reg.resolve("tiny", "production");
  EXPECT_EQ(v1, reg.resolve("tiny", "latest"));
  // The version and its metrics share one stamp.
  EXPECT_TRUE(store.exists("metrics/tiny/metrics_v" + v1.substr(7) + ".json"));

  Server server(dir / "store", dir / "serve.log");
  ASSERT_GT(server.port, 0) << core::read_file(dir / "serve.log");
  std::string served;
  for (int i = 0; i < 200 && served.empty(); ++i) {
    served = served_version(server.port);
    if (served.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(served, v1) << core::read_file(dir / "serve.log");

  // A worse run: learning rate 0 leaves the initial weights.
  auto worse = run_command(tiny_job(dir / "store", "--epochs 1 --set train.lr=0"));
  ASSERT_EQ(worse.exit_code, 0) << worse.output;
  EXPECT_NE(worse.output.find("production stays at " + v1), std::string::npos) << worse.output;
  EXPECT_NE(worse.output.find("refused"), std::string::npos) << worse.output;
  EXPECT_NE(reg.resolve("tiny", "latest"), v1);
  EXPECT_EQ(reg.resolve("tiny", "production"), v1);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // three polls
  EXPECT_EQ(served_version(server.port), v1);

  // A manual promotion is followed by the server within a few polls.
  const std::string v2 = reg.resolve("tiny", "latest");
  ASSERT_EQ(run_command(testing::ddpipe_binary() + " models promote tiny " + v2 +
                        " --alias production --store " + (dir / "store").string())
                .exit_code,
            0);
  for (int i = 0; i < 100 && served_version(server.port) != v2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(served_version(server.port), v2) << core::read_file(dir / "serve.log");
}

// checkpoint.keep_last=2 while a run checkpoints every 2 steps, one rank is killed and the
// group resumes: the run completes and keeps exactly its newest 2 checkpoints.
TEST(RegistryCli, KeepLastTrimsCheckpointsOfAKilledAndResumedRun) {
  testing::TempDir dir;
  storage::LocalStore store(dir / "store");
  testing::check_keep_last_in_killed_run({store, (dir / "store").string(), ""}, dir.path());
}

}  // namespace
}  // namespace ddpipe
