// The registry's commands through the real ddpipe binary, on any store: shared by
// registry_cli_test.cpp (a local folder) and registry_s3_test.cpp (the test Ceph RGW).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "registry/registry.h"
#include "storage/store.h"
#include "test_util.h"

namespace ddpipe::testing {

// A store under test: objects written by the test through `store`, commands run as
// `env` + ddpipe ... --store `url`.
struct StoreUnderTest {
  storage::Store& store;
  std::string url;
  std::string env;  // "" or "AWS_...=... " for S3
};

inline CommandResult models(const StoreUnderTest& s, const std::string& args) {
  return run_command(s.env + "DDPIPE_ACTOR=ci-test " + ddpipe_binary() + " models " + args +
                     " --store " + s.url);
}

// A version of `model` with final test_acc `acc` on dataset `digest` and `lr` in its config.
inline std::string publish_version(storage::Store& store, const std::string& model, double acc,
                                   const std::string& digest = "d1",
                                   const std::string& lr = "0.1") {
  registry::Manifest m;
  m.dataset.name = "synth";
  m.dataset.digest = digest;
  m.final_metrics = {{"test_acc", acc}, {"epoch", 1}};
  m.epochs = nlohmann::json::array({m.final_metrics});
  m.config = "name: " + model + "\ntrain:\n  lr: " + lr + "\n";
  return registry::Registry(store).publish(model, {{"model.pt", "w"}}, m);
}

// promote with and without the gate, history, rollback, diff, rm and gc.
inline void check_registry_commands(const StoreUnderTest& s) {
  registry::Registry reg(s.store);
  const std::string v1 = publish_version(s.store, "m", 0.80);
  const std::string v2 = publish_version(s.store, "m", 0.85, "d1", "0.05");
  const std::string v3 = publish_version(s.store, "m", 0.84);
  const std::string v4 = publish_version(s.store, "m", 0.99, "d2");

  auto r = models(s, "promote m " + v1 + " --alias production --reason 'first release'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(reg.resolve("m", "production"), v1);
  // The gate: better → promoted; worse → refused (exit 10), the comparison printed.
  r = models(s, "promote m " + v2 +
                    " --alias production --if-better-than production "
                    "--metric test_acc --min-delta 0.01");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("0.8500 vs production (" + v1 + ") test_acc=0.8000"), std::string::npos)
      << r.output;
  r = models(s, "promote m " + v3 + " --alias production --if-better-than production");
  EXPECT_EQ(r.exit_code, 10) << r.output;
  EXPECT_NE(r.output.find("refused"), std::string::npos) << r.output;
  r = models(s, "promote m " + v4 + " --alias production --if-better-than production");
  EXPECT_EQ(r.exit_code, 10) << r.output;
  EXPECT_NE(r.output.find("different datasets"), std::string::npos) << r.output;
  EXPECT_EQ(reg.resolve("m", "production"), v2);

  r = models(s, "history m --alias production --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto h = nlohmann::json::parse(r.output)["production"];
  ASSERT_EQ(h.size(), 2u) << r.output;
  EXPECT_EQ(h[0]["reason"], "first release");
  EXPECT_EQ(h[0]["actor"], "ci-test");
  EXPECT_EQ(h[1]["from"], v1);
  EXPECT_EQ(h[1]["to"], v2);
  EXPECT_TRUE(h[1]["gate"]["pass"].get<bool>());

  r = models(s, "rollback m --alias production --reason canary");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(reg.resolve("m", "production"), v1);
  r = models(s, "history m");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rollback of #2: canary"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model_latest"), std::string::npos) << r.output;

  r = models(s, "diff m " + v1 + " " + v2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("train.lr: 0.1 -> 0.05"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("+0.0500"), std::string::npos) << r.output;
  r = models(s, "diff m production latest --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(nlohmann::json::parse(r.output)["dataset"]["same"].get<bool>());

  // rm refuses what an alias or model_latest points at, naming them.
  r = models(s, "rm m " + v1);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("production"), std::string::npos) << r.output;
  r = models(s, "rm m " + v4);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("model_latest"), std::string::npos) << r.output;
  r = models(s, "rm m " + v3);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(reg.versions("m"), (std::vector<std::string>{v1, v2, v4}));

  // gc --keep-versions 0: only what is in use stays (production → v1, model_latest → v4).
  r = models(s, "gc m --keep-versions 0 --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("would remove version " + v2), std::string::npos) << r.output;
  EXPECT_EQ(reg.versions("m").size(), 3u);
  r = models(s, "gc m --keep-versions 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(reg.versions("m"), (std::vector<std::string>{v1, v4}));
  r = models(s, "list");
  EXPECT_NE(r.output.find("<- production"), std::string::npos) << r.output;
}

// `n` processes promote `n` different versions to one alias at once: each exits 0 or 128,
// every one that exited 0 is in the history, none that exited 128 is, and the history is one
// unbroken chain.
inline void check_concurrent_promotions(const StoreUnderTest& s, int n) {
  registry::Registry reg(s.store);
  const std::string base = publish_version(s.store, "race", 0.5);
  ASSERT_EQ(models(s, "promote race " + base + " --alias production").exit_code, 0);
  std::vector<std::string> candidates;
  for (int i = 0; i < n; ++i)
    candidates.push_back(publish_version(s.store, "race", 0.6 + i * 0.01));
  // All started together by one shell; each writes its exit code to a file.
  TempDir dir;
  std::string script;
  for (int i = 0; i < n; ++i) {
    script += "(" + s.env + "DDPIPE_ACTOR=p" + std::to_string(i) + " " + ddpipe_binary() +
              " models promote race " + candidates[i] + " --alias production --store " + s.url +
              " >" + (dir / std::to_string(i)).string() + ".out 2>&1; echo $? >" +
              (dir / std::to_string(i)).string() + ".rc) & ";
  }
  ASSERT_EQ(run_command(script + "wait").exit_code, 0);
  std::set<std::string> winners, losers;
  for (int i = 0; i < n; ++i) {
    const std::string rc = run_command("cat " + (dir / std::to_string(i)).string() + ".rc").output;
    const std::string out =
        run_command("cat " + (dir / std::to_string(i)).string() + ".out").output;
    if (rc.rfind("0", 0) == 0) {
      winners.insert(candidates[i]);
    } else {
      EXPECT_EQ(rc.substr(0, 3), "128") << out;
      EXPECT_NE(out.find("concurrent"), std::string::npos) << out;
      losers.insert(candidates[i]);
    }
  }
  EXPECT_GE(winners.size(), 1u);
  const auto h = reg.alias_history("race", "production");
  ASSERT_EQ(h.size(), winners.size() + 1);
  for (size_t i = 1; i < h.size(); ++i) {
    EXPECT_EQ(h[i].from, h[i - 1].to);
    EXPECT_EQ(h[i].parent, h[i - 1].key);
    EXPECT_TRUE(winners.count(h[i].to)) << h[i].to;
  }
  EXPECT_EQ(reg.resolve("race", "production"), h.back().to);
  std::cout << "concurrent promotions: " << winners.size() << " won, " << losers.size()
            << " lost\n";
}

// `ddpipe run` of a tiny synthetic job on store `url` (`env`: its credentials) with
// registry.promote.alias=production.
inline std::string tiny_job(const std::string& url, const std::string& env,
                            const std::filesystem::path& cache, const std::string& extra) {
  return env + ddpipe_binary() + " run --store " + url + " --set cache_dir=" + cache.string() +
         " --set name=tiny --set data.format=synthetic --set data.name=tiny-synth"
         " --set data.channels=1 --set data.height=12 --set data.width=12"
         " --set data.train_size=384 --set data.test_size=101 --set data.classes=4"
         " --set model.width=4 --set train.batch_size=32 --set train.threads=1"
         " --set loader.workers=1 --set deterministic=true --set dist.nproc=2"
         " --set registry.promote.alias=production " +
         extra;
}

// checkpoint.keep_last=2 in a run that checkpoints every 2 steps; rank 1 is killed once two
// checkpoints exist and the group resumes (--max-restarts): the run completes, trimmed old
// checkpoints while it ran, and keeps exactly its newest 2, the last one epoch_3.
inline void check_keep_last_in_killed_run(const StoreUnderTest& s,
                                          const std::filesystem::path& dir) {
  const std::string log = (dir / "run.log").string();
  // The assignments of s.env go before `exec` (after it, sh would run them as the command).
  const std::string cmd = tiny_job(s.url, s.env + "exec ", dir / "cache",
                                   "--epochs 3 --max-restarts 2 --set checkpoint.every_steps=2"
                                   " --set checkpoint.keep_last=2 --set data.train_size=1024") +
                          " > " + log + " 2>&1";
  pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  registry::Registry reg(s.store);
  bool killed = false, exited = false;
  for (int i = 0; i < 3000 && !killed && !exited; ++i) {
    exited = waitpid(launcher, nullptr, WNOHANG) == launcher;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (reg.checkpoints("tiny").size() < 2) continue;
    auto ranks = testing::children_of(launcher);
    if (ranks.size() == 2) {
      ASSERT_EQ(kill(ranks[1], SIGKILL), 0);
      killed = true;
    }
  }
  if (!killed && !exited) {
    kill(launcher, SIGKILL);
    waitpid(launcher, nullptr, 0);
  }
  ASSERT_TRUE(killed) << "never saw two checkpoints while two ranks ran: "
                      << run_command("cat " + log).output;
  int status = 0;
  waitpid(launcher, &status, 0);
  const std::string output = run_command("cat " + log).output;
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_NE(output.find("resuming from checkpoint"), std::string::npos) << output;
  EXPECT_NE(output.find("removed old checkpoint"), std::string::npos) << output;
  const auto cps = reg.checkpoints("tiny");
  ASSERT_EQ(cps.size(), 2u);
  EXPECT_EQ(cps.back().id(), "epoch_3");  // the newest: what a restart would resume from
}

}  // namespace ddpipe::testing
