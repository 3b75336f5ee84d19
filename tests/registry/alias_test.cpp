// Alias history, promotion races, the gate, rollback, diff and retention on a local store.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/error.h"
#include "registry/compare.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::registry {
namespace {

using nlohmann::json;

Manifest version_with(double acc, const std::string& digest = "d1", const std::string& run = "") {
  Manifest m;
  m.dataset.digest = digest;
  m.final_metrics = {{"test_acc", acc}, {"epoch", 2}};
  m.epochs = json::array({{{"epoch", 1}, {"test_acc", acc / 2}}, m.final_metrics});
  m.config = "train:\n  lr: 0.1\n  epochs: 2\nname: m\n";
  m.run_id = run;
  return m;
}

TEST(AliasHistory, MovesAreRecordedAndRollbackGoesBack) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  const std::string v1 =
      reg.publish("m", {{"model.pt", "1"}}, version_with(0.5), "20260101_000001");
  const std::string v2 =
      reg.publish("m", {{"model.pt", "2"}}, version_with(0.6), "20260101_000002");
  EXPECT_EQ(v1, "model_v20260101_000001");
  ::setenv("DDPIPE_ACTOR", "ci-bot", 1);
  AliasMove m;
  m.reason = "first";
  reg.move_alias("m", "production", v1, m);
  m.reason = "better";
  reg.move_alias("m", "production", v2, m);
  auto h = reg.alias_history("m", "production");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].seq, 1);
  EXPECT_EQ(h[0].from, "");
  EXPECT_EQ(h[0].to, v1);
  EXPECT_EQ(h[1].from, v1);
  EXPECT_EQ(h[1].to, v2);
  EXPECT_EQ(h[1].reason, "better");
  EXPECT_EQ(h[1].actor, "ci-bot");
  EXPECT_EQ(h[1].parent, h[0].key);
  EXPECT_EQ(reg.resolve("m", "production"), v2);

  AliasMove back = reg.rollback_alias("m", "production", "bad canary");
  EXPECT_EQ(back.to, v1);
  EXPECT_EQ(reg.resolve("m", "production"), v1);
  EXPECT_NE(back.reason.find("bad canary"), std::string::npos);
  EXPECT_EQ(reg.alias_history("m", "production").size(), 3u);
  // model_latest has its history too (moved by publish).
  EXPECT_EQ(reg.alias_history("m", "latest").size(), 2u);
  EXPECT_EQ(reg.alias_history("m", "latest").back().to, v2);
  ::unsetenv("DDPIPE_ACTOR");
}

TEST(AliasHistory, RollbackWithoutPreviousTargetIsNotFound) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  const std::string v1 = reg.publish("m", {{"model.pt", "1"}}, version_with(0.5));
  reg.move_alias("m", "prod", v1, {});
  try {
    reg.rollback_alias("m", "prod", "");
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("no previous target"), std::string::npos);
  }
}

TEST(AliasHistory, NeverPointsAtAnIncompleteVersion) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  reg.publish("m", {{"model.pt", "1"}}, version_with(0.5));
  store.put("models/m/model_v99990101_000000/model.pt", "partial");
  EXPECT_THROW(reg.move_alias("m", "prod", "model_v99990101_000000", {}), core::Error);
  EXPECT_TRUE(reg.alias_history("m", "prod").empty());
}

TEST(AliasHistory, LegacyPointerStillResolvesAndGainsHistory) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  const std::string v1 = reg.publish("m", {{"model.pt", "1"}}, version_with(0.5));
  const std::string v2 = reg.publish("m", {{"model.pt", "2"}}, version_with(0.7));
  store.put("models/m/aliases/prod", json({{"version", v1}, {"updated", "x"}}).dump());
  EXPECT_EQ(reg.resolve("m", "prod"), v1);
  reg.move_alias("m", "prod", v2, {});
  auto h = reg.alias_history("m", "prod");
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].from, v1);
  EXPECT_EQ(h[0].seq, 1);
  // An older build rewrites the pointer without seq: the next move neither collides with the
  // recorded entries nor waits for them to go stale; the history restarts after the gap.
  store.put("models/m/aliases/prod", json({{"version", v1}, {"updated", "y"}}).dump());
  const auto t0 = std::chrono::steady_clock::now();
  const AliasMove m = reg.move_alias("m", "prod", v2, {});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(m.seq, 1);
  EXPECT_EQ(reg.alias_history("m", "prod").size(), 1u);
  EXPECT_EQ(store.list("models/m/alias_history/prod/").size(), 2u);
}

// A float seq was converted to int64_t (undefined for 1e300: tests/registry/fuzz), INT64_MAX
// overflowed when incremented, and a non-string entry threw json's type_error out of the move.
// The pointer is now corrupt (a storage error naming it); a history entry with such a seq is
// skipped as unreadable.
TEST(AliasHistory, PointerAndEntryNumbersOutOfRangeAreRefused) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  const std::string v1 = reg.publish("m", {{"model.pt", "1"}}, version_with(0.5));
  for (const json& bad :
       {json({{"version", v1}, {"seq", 1e300}}), json({{"version", v1}, {"seq", INT64_MAX}}),
        json({{"version", v1}, {"seq", -1}}), json({{"version", v1}, {"seq", 1}, {"entry", 5}})}) {
    store.put("models/m/aliases/prod", bad.dump());
    const std::string e =
        testing::error_of(core::ErrorKind::kStorage, [&] { reg.move_alias("m", "prod", v1, {}); });
    EXPECT_NE(e.find("models/m/aliases/prod is corrupt"), std::string::npos) << bad.dump();
  }
  EXPECT_THROW(AliasMove::from_json(json({{"seq", 1e300}})), json::exception);
  EXPECT_EQ(AliasMove::from_json(json({{"seq", 7}})).seq, 7);
}

// Threads racing on one alias, each building on the same head: exactly one wins per round and
// the history holds exactly the winners.
TEST(AliasHistory, ConcurrentPromotionsOneWinsNothingLost) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry setup(store);
  setup.move_alias("m", "prod", setup.publish("m", {{"model.pt", "w"}}, version_with(0.1)), {});
  for (int round = 0; round < 5; ++round) {
    // Fresh candidates each round, none of them the head.
    std::vector<std::string> vs{""};
    for (int i = 1; i < 4; ++i) {
      vs.push_back(setup.publish("m", {{"model.pt", "w"}}, version_with(0.1 * i)));
    }
    const std::string head = setup.resolve("m", "prod");
    std::atomic<int> wins{0}, conflicts{0};
    std::vector<std::thread> threads;
    for (int t = 1; t < 4; ++t) {
      threads.emplace_back([&, t] {
        Registry reg(store);
        AliasMove m;
        m.reason = "thread " + std::to_string(t);
        try {
          reg.move_alias("m", "prod", vs[t], m, head);
          ++wins;
        } catch (const core::Error& e) {
          EXPECT_EQ(e.kind(), core::ErrorKind::kRetryable) << e.what();
          ++conflicts;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wins.load(), 1) << "round " << round;
    EXPECT_EQ(conflicts.load(), 2);
  }
  auto h = setup.alias_history("m", "prod");
  ASSERT_EQ(h.size(), 6u);
  for (size_t i = 1; i < h.size(); ++i) {
    EXPECT_EQ(h[i].from, h[i - 1].to);
    EXPECT_EQ(h[i].seq, static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ(h.back().to, setup.resolve("m", "prod"));
  // Losers removed their entries.
  EXPECT_EQ(store.list("models/m/alias_history/prod/").size(), 6u);
}

// Without an expected head, racing publishes all land on model_latest, one after the other.
TEST(AliasHistory, ConcurrentUnconditionalMovesAllRecorded) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry setup(store);
  const std::string v = setup.publish("m", {{"model.pt", "w"}}, version_with(0.5));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      Registry reg(store);
      reg.set_alias("m", "staging", v);
    });
  }
  for (auto& th : threads) th.join();
  const auto h = setup.alias_history("m", "staging");
  EXPECT_EQ(h.size(), 4u);
  if (h.size() != 4u) {
    for (const auto& o : store.list("models/m/alias_history/staging/")) {
      ADD_FAILURE() << o.key << " " << store.get(o.key);
    }
    ADD_FAILURE() << store.get("models/m/aliases/staging");
  }
}

TEST(Gate, PromotesRefusesAndSaysWhy) {
  Gate g{"production", "test_acc", 0.01};
  const Manifest base = version_with(0.80), better = version_with(0.85),
                 slightly = version_with(0.805), other = version_with(0.9, "d2");
  auto b = std::make_optional(std::make_pair(std::string("model_v1"), base));
  EXPECT_TRUE(judge(g, "model_v2", better, b).pass);
  GateVerdict v = judge(g, "model_v2", slightly, b);
  EXPECT_FALSE(v.pass);
  EXPECT_NE(v.reason.find("refused"), std::string::npos) << v.reason;
  v = judge(g, "model_v2", other, b);
  EXPECT_FALSE(v.pass);
  EXPECT_NE(v.reason.find("different datasets"), std::string::npos) << v.reason;
  v = judge(g, "model_v2", better, std::nullopt);
  EXPECT_TRUE(v.pass);
  EXPECT_NE(v.reason.find("does not exist yet"), std::string::npos);
  // min_delta 0: equal is not better; lower is better for losses.
  EXPECT_FALSE(judge({"p", "test_acc", 0.0}, "model_v2", base, b).pass);
  Manifest low = base;
  low.final_metrics["test_loss"] = 0.3;
  Manifest high = base;
  high.final_metrics["test_loss"] = 0.5;
  EXPECT_TRUE(
      judge({"p", "test_loss", 0.0}, "model_v2", low, std::make_pair(std::string("model_v1"), high))
          .pass);
}

TEST(Diff, ConfigDatasetAndMetrics) {
  Manifest a = version_with(0.5), b = version_with(0.75);
  a.version = "model_va";
  b.version = "model_vb";
  b.config = "train:\n  lr: 0.05\n  epochs: 2\nname: m\n";
  json d = diff(a, b);
  ASSERT_EQ(d["config"].size(), 1u);
  EXPECT_EQ(d["config"][0]["key"], "train.lr");
  EXPECT_EQ(d["config"][0]["a"], "0.1");
  EXPECT_TRUE(d["dataset"]["same"].get<bool>());
  EXPECT_DOUBLE_EQ(d["final"][0]["delta"].get<double>(), 0.25);
  EXPECT_EQ(d["epochs"].size(), 2u);
  const std::string text = diff_text(d);
  EXPECT_NE(text.find("train.lr: 0.1 -> 0.05"), std::string::npos) << text;
  EXPECT_NE(text.find("+0.2500"), std::string::npos) << text;
}

TEST(Retention, RemoveRefusesAliasedVersions) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  const std::string v1 =
      reg.publish("m", {{"model.pt", "1"}}, version_with(0.5), "20260101_000001");
  reg.write_metrics("m", "20260101_000001", {{"x", 1}});
  const std::string v2 = reg.publish("m", {{"model.pt", "2"}}, version_with(0.6));
  reg.move_alias("m", "production", v1, {});
  const std::string err = testing::usage_error([&] { reg.remove_version("m", v1); });
  EXPECT_NE(err.find("production"), std::string::npos) << err;
  EXPECT_NE(testing::usage_error([&] { reg.remove_version("m", v2); }).find("model_latest"),
            std::string::npos);
  reg.move_alias("m", "production", v2, {});
  reg.remove_version("m", v1);
  EXPECT_TRUE(store.list("models/m/" + v1 + "/").empty());
  EXPECT_FALSE(store.exists("metrics/m/metrics_v20260101_000001.json"));
  EXPECT_EQ(reg.versions("m"), std::vector<std::string>{v2});
}

void put_checkpoint(storage::Store& store, const CheckpointRef& c, const std::string& run) {
  const std::string p = "models/m/checkpoints/" + c.id() + "/";
  store.put(p + "model.pt", "w");
  store.put(p + "state.json", json({{"run_id", run}, {"epoch", c.epoch}}).dump());
}

TEST(Retention, GcKeepsAliasedLatestAndUnpublishedRunsNewestCheckpoint) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  std::vector<std::string> v;
  for (int i = 0; i < 5; ++i) {
    v.push_back(reg.publish("m", {{"model.pt", "w"}}, version_with(0.1 * i, "d1", "run-a"),
                            "2026010" + std::to_string(i + 1) + "_000000"));
  }
  reg.move_alias("m", "production", v[0], {});
  put_checkpoint(store, {1, 0}, "run-a");
  put_checkpoint(store, {2, 0}, "run-a");
  put_checkpoint(store, {3, 0}, "run-b");  // unpublished run
  put_checkpoint(store, {4, 0}, "run-a");
  put_checkpoint(store, {5, 0}, "run-a");
  auto dry = reg.gc("m", 1, 1, true);
  EXPECT_EQ(reg.versions("m").size(), 5u);  // a dry run deletes nothing
  auto removed = reg.gc("m", 1, 1, false);
  EXPECT_EQ(dry.size(), removed.size());
  // Kept: v0 (production), v4 (newest, model_latest); epoch_5 (newest), epoch_3 (run-b).
  EXPECT_EQ(reg.versions("m"), (std::vector<std::string>{v[0], v[4]}));
  auto cps = reg.checkpoints("m");
  ASSERT_EQ(cps.size(), 2u);
  EXPECT_EQ(cps[0].id(), "epoch_3");
  EXPECT_EQ(cps[1].id(), "epoch_5");
}

TEST(Retention, TrimKeepsTheRunsNewest) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  Registry reg(store);
  put_checkpoint(store, {1, 0}, "r1");
  put_checkpoint(store, {1, 5}, "r2");
  put_checkpoint(store, {2, 0}, "r1");
  put_checkpoint(store, {3, 0}, "r1");
  EXPECT_EQ(reg.trim_checkpoints("m", "r1", 0).size(), 0u);
  EXPECT_EQ(reg.trim_checkpoints("m", "r1", 2).size(), 1u);
  auto cps = reg.checkpoints("m");
  ASSERT_EQ(cps.size(), 3u);
  EXPECT_EQ(cps[0].id(), "epoch_1_step_5");  // another run's: untouched
  EXPECT_EQ(cps[2].id(), "epoch_3");
}

}  // namespace
}  // namespace ddpipe::registry
