#include "runs/tracker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "log_capture.h"
#include "runs/runs.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::runs {
namespace {

// A local store in a temporary folder whose put can be made slow or failing, and counts puts.
class FaultyStore : public storage::Store {
 public:
  FaultyStore() : real_(dir_.path()) {}

  std::atomic<double> put_delay_s{0};
  std::atomic<bool> put_fails{false};
  std::atomic<int> puts{0};         // attempted
  std::atomic<int> failed_puts{0};  // of which thrown
  std::atomic<bool> in_put{false};  // a put is sleeping now

  std::string url() const override { return real_.url(); }
  void put(const std::string& key, std::string_view bytes) override {
    ++puts;
    if (put_delay_s > 0) {
      in_put = true;
      std::this_thread::sleep_for(std::chrono::duration<double>(put_delay_s.load()));
      in_put = false;
    }
    if (put_fails) {
      ++failed_puts;
      core::fail_storage("test store: put of " + key + " refused (the store is down)");
    }
    real_.put(key, bytes);
  }
  void put_file(const std::string& key, const std::filesystem::path& source) override {
    real_.put_file(key, source);
  }
  std::string get(const std::string& key) override { return real_.get(key); }
  void get_file(const std::string& key, const std::filesystem::path& dest) override {
    real_.get_file(key, dest);
  }
  bool exists(const std::string& key) override { return real_.exists(key); }
  std::vector<storage::ObjectInfo> list(const std::string& prefix) override {
    return real_.list(prefix);
  }
  void remove(const std::string& key) override { real_.remove(key); }

 private:
  testing::TempDir dir_;
  storage::LocalStore real_;
};

RunRecord initial_record() {
  RunRecord r;
  r.name = "fmnist";
  r.run_id = "run-1";
  r.world_size = 2;
  r.hosts = {"node-a"};
  return r;
}

// Waits until `done` holds (polling), for at most `timeout_s`; returns whether it did.
bool eventually(const std::function<bool()>& done, double timeout_s) {
  const double end = core::monotonic_seconds() + timeout_s;
  while (!done()) {
    if (core::monotonic_seconds() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(RunTracker, InitialRecordIsWrittenBeforeTheConstructorReturns) {
  FaultyStore store;
  const double before = unix_now();
  RunTracker tracker(store, initial_record(), 0);
  EXPECT_EQ(tracker.key(), "runs/fmnist/run-1.json");
  const RunRecord r = read_run(store, "fmnist", "run-1");
  EXPECT_EQ(r.status, kRunning);
  EXPECT_EQ(r.world_size, 2);
  EXPECT_EQ(r.hosts, std::vector<std::string>{"node-a"});
  EXPECT_FALSE(r.started.empty());
  EXPECT_FALSE(r.heartbeat.empty());
  EXPECT_GE(r.started_unix, before - 1);
  EXPECT_GE(r.heartbeat_unix, r.started_unix);
  EXPECT_TRUE(r.finished.empty());
}

TEST(RunTracker, KeepsAGivenStartAndStatus) {
  FaultyStore store;
  RunRecord initial = initial_record();
  initial.started = "2026-11-30T10:15:00Z";
  initial.started_unix = 1796033700;
  initial.status = kRestarting;
  RunTracker tracker(store, initial, 0);
  const RunRecord r = read_run(store, "fmnist", "run-1");
  EXPECT_EQ(r.started, "2026-11-30T10:15:00Z");
  EXPECT_EQ(r.started_unix, 1796033700);
  EXPECT_EQ(r.status, kRestarting);
}

TEST(RunTracker, UpdatesAppearWithoutFurtherCalls) {
  FaultyStore store;
  const double heartbeat_s = 0.1;
  RunTracker tracker(store, initial_record(), heartbeat_s);
  const double start = core::monotonic_seconds();
  tracker.update([](RunRecord& r) {
    r.progress.epoch = 2;
    r.progress.epochs = 5;
    r.latest_metrics["test_acc"] = 0.75;
  });
  // Within ~2 heartbeats; 2 s leaves room for a loaded machine (fsync, scheduling).
  ASSERT_TRUE(
      eventually([&] { return read_run(store, "fmnist", "run-1").progress.epoch == 2; }, 2.0));
  EXPECT_LT(core::monotonic_seconds() - start, 2.0);
  const RunRecord r = read_run(store, "fmnist", "run-1");
  EXPECT_EQ(r.progress.epochs, 5);
  EXPECT_EQ(r.latest_metrics["test_acc"], 0.75);
  EXPECT_EQ(tracker.snapshot().progress.epoch, 2);
}

TEST(RunTracker, HeartbeatAdvancesWithoutUpdates) {
  FaultyStore store;
  RunTracker tracker(store, initial_record(), 0.05);
  const double first = read_run(store, "fmnist", "run-1").heartbeat_unix;
  const int puts = store.puts;
  ASSERT_TRUE(eventually(
      [&] { return read_run(store, "fmnist", "run-1").heartbeat_unix > first + 0.1; }, 3.0));
  EXPECT_GE(store.puts - puts, 2);
  EXPECT_EQ(read_run(store, "fmnist", "run-1").status, kRunning);
}

TEST(RunTracker, UpdateCannotRenameTheRun) {
  FaultyStore store;
  RunTracker tracker(store, initial_record(), 0);
  tracker.update([](RunRecord& r) {
    r.name = "other";
    r.run_id = "../x";
    r.attempt = 1;
  });
  const RunRecord r = tracker.snapshot();
  EXPECT_EQ(r.name, "fmnist");
  EXPECT_EQ(r.run_id, "run-1");
  EXPECT_EQ(r.attempt, 1);
}

TEST(RunTracker, FinishWritesStatusErrorAndVersionOnce) {
  FaultyStore store;
  RunTracker tracker(store, initial_record(), 0.05);
  tracker.update([](RunRecord& r) { r.progress.epoch = 3; });
  tracker.finish(kFailed, RunError{"rank 1 lost", 128, 1}, "model_v20261130_102000");
  RunRecord r = read_run(store, "fmnist", "run-1");
  EXPECT_EQ(r.status, kFailed);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->message, "rank 1 lost");
  EXPECT_EQ(r.error->exit_code, 128);
  EXPECT_EQ(r.error->rank, 1);
  EXPECT_EQ(r.version, "model_v20261130_102000");
  EXPECT_EQ(r.progress.epoch, 3);
  EXPECT_FALSE(r.finished.empty());

  // Idempotent, and the thread is gone: nothing is written any more.
  const int puts = store.puts;
  tracker.finish(kSucceeded, std::nullopt, "model_v2");
  tracker.update([](RunRecord& r) { r.progress.epoch = 9; });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(store.puts, puts);
  r = read_run(store, "fmnist", "run-1");
  EXPECT_EQ(r.status, kFailed);
  EXPECT_EQ(r.progress.epoch, 3);
}

TEST(RunTracker, FinishRejectsAStatusThatIsNotStored) {
  FaultyStore store;
  RunTracker tracker(store, initial_record(), 0);
  const std::string message = testing::usage_error([&] { tracker.finish(kLost); });
  EXPECT_NE(message.find("'lost'"), std::string::npos) << message;
  tracker.finish(kSucceeded);  // the bad call changed nothing
  EXPECT_EQ(read_run(store, "fmnist", "run-1").status, kSucceeded);
}

TEST(RunTracker, BadNamesAreUsageErrors) {
  FaultyStore store;
  RunRecord r = initial_record();
  r.run_id = "a/b";
  EXPECT_NE(testing::usage_error([&] { RunTracker(store, r, 0); }).find("run id 'a/b'"),
            std::string::npos);
  EXPECT_EQ(store.puts, 0);
}

TEST(RunTracker, ZeroHeartbeatWritesOnlyInitialAndFinal) {
  FaultyStore store;
  RunTracker tracker(store, initial_record(), 0);
  EXPECT_EQ(store.puts, 1);
  for (int i = 1; i <= 5; ++i) tracker.update([i](RunRecord& r) { r.progress.step = i; });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(store.puts, 1);
  EXPECT_EQ(read_run(store, "fmnist", "run-1").progress.step, 0);
  tracker.finish(kSucceeded, std::nullopt, "model_v1");
  EXPECT_EQ(store.puts, 2);
  const RunRecord r = read_run(store, "fmnist", "run-1");
  EXPECT_EQ(r.progress.step, 5);
  EXPECT_EQ(r.status, kSucceeded);
}

// A store whose put takes 2 s must not slow update(): this checks that update() does not wait
// for the store (with a wide margin), not how fast it is.
TEST(RunTracker, SlowStoreNeverBlocksUpdate) {
  FaultyStore store;
  RunTracker tracker(store, initial_record(), 0.05);
  store.put_delay_s = 2.0;
  ASSERT_TRUE(eventually([&] { return store.in_put.load(); }, 3.0));  // a write is stuck now
  const double start = core::monotonic_seconds();
  for (int i = 0; i < 1000; ++i) {
    tracker.update([i](RunRecord& r) {
      r.progress.step = i;
      r.latest_metrics["loss"] = 1.0 / (i + 1);
    });
  }
  const double elapsed = core::monotonic_seconds() - start;
  EXPECT_LT(elapsed, 0.5) << "1000 update() calls took " << elapsed << " s";
  EXPECT_EQ(tracker.snapshot().progress.step, 999);
}

TEST(RunTracker, FailingStoreNeverThrowsAndWarnsOnce) {
  LogCapture logs;
  FaultyStore store;
  store.put_fails = true;
  std::optional<RunTracker> tracker;
  ASSERT_NO_THROW(tracker.emplace(store, initial_record(), 0.05));
  for (int i = 0; i < 1000; ++i) {
    EXPECT_NO_THROW(tracker->update([i](RunRecord& r) { r.progress.step = i; }));
  }
  ASSERT_TRUE(eventually([&] { return store.failed_puts >= 4; }, 3.0));
  const double start = core::monotonic_seconds();
  EXPECT_NO_THROW(tracker->finish(kSucceeded));
  const double elapsed = core::monotonic_seconds() - start;
  EXPECT_LT(elapsed, 11.0);
  EXPECT_GE(store.failed_puts, 6);  // the initial, background ones and retries of the final one
  EXPECT_FALSE(store.exists(tracker->key()));
  EXPECT_EQ(logs.count("warn"), 1) << logs.stop();
  EXPECT_EQ(logs.count("warn", "runs/fmnist/run-1.json"), 1);
  EXPECT_EQ(logs.count("warn", "the store is down"), 1);
  EXPECT_EQ(logs.count("error", "gave up writing the final status"), 1) << logs.stop();
}

TEST(RunTracker, RecoveryAfterAnOutageIsLoggedOnce) {
  LogCapture logs;
  FaultyStore store;
  store.put_fails = true;
  RunTracker tracker(store, initial_record(), 0.05);
  ASSERT_TRUE(eventually([&] { return store.failed_puts >= 3; }, 3.0));
  store.put_fails = false;
  ASSERT_TRUE(eventually([&] { return store.exists(tracker.key()); }, 3.0));
  const int puts = store.puts;
  ASSERT_TRUE(eventually([&] { return store.puts >= puts + 2; }, 3.0));  // more good writes
  tracker.finish(kSucceeded);
  EXPECT_EQ(read_run(store, "fmnist", "run-1").status, kSucceeded);
  EXPECT_EQ(logs.count("warn"), 1) << logs.stop();
  EXPECT_EQ(logs.count("info", "written again"), 1) << logs.stop();
  EXPECT_EQ(logs.count("error"), 0) << logs.stop();
}

TEST(RunTracker, DestructorStopsWithoutAFinalStatus) {
  FaultyStore store;
  {
    RunTracker tracker(store, initial_record(), 0.05);
    tracker.update([](RunRecord& r) { r.progress.epoch = 1; });
  }
  const int puts = store.puts;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(store.puts, puts);
  const RunRecord r = read_run(store, "fmnist", "run-1");
  EXPECT_EQ(r.status, kRunning);
  EXPECT_TRUE(r.finished.empty());
}

TEST(RunTracker, ConcurrentUpdatesAndFinish) {
  FaultyStore store;
  RunTracker tracker(store, initial_record(), 0.01);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&tracker] {
      for (int i = 0; i < 500; ++i) tracker.update([](RunRecord& r) { ++r.progress.step; });
    });
  }
  for (auto& t : threads) t.join();
  std::thread a([&] { tracker.finish(kSucceeded); });
  std::thread b([&] { tracker.finish(kSucceeded); });
  a.join();
  b.join();
  const RunRecord r = read_run(store, "fmnist", "run-1");
  EXPECT_EQ(r.progress.step, 2000);
  EXPECT_EQ(r.status, kSucceeded);
}

}  // namespace
}  // namespace ddpipe::runs
