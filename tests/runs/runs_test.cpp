#include "runs/runs.h"

#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>

#include "core/error.h"
#include "log_capture.h"
#include "storage/store.h"
#include "test_util.h"

namespace ddpipe::runs {
namespace {

using nlohmann::json;

// A run of `name` started at `started_unix`, written as the launcher would.
RunRecord add_run(storage::Store& store, const std::string& name, const std::string& run_id,
                  double started_unix) {
  return update_run(store, name, run_id, [&](RunRecord& r) {
    r.started_unix = started_unix;
    r.started = iso_utc(started_unix);
  });
}

std::vector<std::string> ids_of(const std::vector<RunRecord>& records) {
  std::vector<std::string> out;
  for (const RunRecord& r : records) out.push_back(r.name + "/" + r.run_id);
  return out;
}

TEST(Runs, ListNewestFirstAndByModel) {
  testing::TempDir dir;
  auto store = storage::open_store(dir.path().string());
  EXPECT_TRUE(list_runs(*store).empty());
  add_run(*store, "a", "r1", 1000);
  add_run(*store, "b", "r2", 3000);
  add_run(*store, "a", "r3", 2000);
  add_run(*store, "ab", "r4", 4000);  // a prefix of no other model's folder
  EXPECT_EQ(ids_of(list_runs(*store)), (std::vector<std::string>{"ab/r4", "b/r2", "a/r3", "a/r1"}));
  EXPECT_EQ(ids_of(list_runs(*store, "a")), (std::vector<std::string>{"a/r3", "a/r1"}));
  EXPECT_TRUE(list_runs(*store, "c").empty());
  EXPECT_EQ(testing::usage_error([&] { list_runs(*store, "../a"); }).find("model name '../a'"), 0u);
}

TEST(Runs, ListSkipsBadRecordsAndKeepsTheRest) {
  testing::TempDir dir;
  auto store = storage::open_store(dir.path().string());
  add_run(*store, "m", "good1", 1000);
  add_run(*store, "m", "good2", 2000);
  store->put("runs/m/broken.json", "{not json");
  store->put("runs/m/nostatus.json", json({{"name", "m"}, {"run_id", "nostatus"}}).dump());
  store->put("runs/m/moved.json",
             json({{"name", "m"}, {"run_id", "x"}, {"status", "running"}}).dump());
  store->put("runs/m/notes.txt", "not a record");  // ignored quietly
  LogCapture logs;
  EXPECT_EQ(ids_of(list_runs(*store, "m")), (std::vector<std::string>{"m/good2", "m/good1"}));
  EXPECT_EQ(ids_of(list_runs(*store)).size(), 2u);
  EXPECT_EQ(logs.count("warn", "runs/m/broken.json"), 2) << logs.stop();
  EXPECT_EQ(logs.count("warn", "runs/m/nostatus.json"), 2);
  EXPECT_EQ(logs.count("warn", "status is missing"), 2);
  EXPECT_EQ(logs.count("warn", "runs/m/moved.json"), 2);
  EXPECT_EQ(logs.count("warn", "notes.txt"), 0);
}

TEST(Runs, ReadRunNotFoundSaysHowToList) {
  testing::TempDir dir;
  auto store = storage::open_store(dir.path().string());
  add_run(*store, "fmnist", "r1", 1000);
  EXPECT_EQ(read_run(*store, "fmnist", "r1").run_id, "r1");
  const std::string message =
      testing::error_of(core::ErrorKind::kNotFound, [&] { read_run(*store, "fmnist", "r2"); });
  EXPECT_NE(message.find("fmnist"), std::string::npos) << message;
  EXPECT_NE(message.find("'r2'"), std::string::npos) << message;
  EXPECT_NE(message.find("`ddpipe runs list fmnist`"), std::string::npos) << message;
  store->put("runs/fmnist/bad.json", "[]");
  const std::string bad =
      testing::error_of(core::ErrorKind::kData, [&] { read_run(*store, "fmnist", "bad"); });
  EXPECT_NE(bad.find("runs/fmnist/bad.json"), std::string::npos) << bad;
}

TEST(Runs, UpdateRunCreatesThenModifies) {
  testing::TempDir dir;
  auto store = storage::open_store(dir.path().string());
  const double before = unix_now();
  RunRecord created = update_run(*store, "m", "r1", [](RunRecord& r) { r.world_size = 2; });
  EXPECT_EQ(created.name, "m");
  EXPECT_EQ(created.run_id, "r1");
  EXPECT_EQ(created.status, kRunning);
  EXPECT_GE(created.started_unix, before - 1);
  EXPECT_FALSE(created.started.empty());
  EXPECT_EQ(read_run(*store, "m", "r1").to_json(), created.to_json());

  RunRecord restarting = update_run(*store, "m", "r1", [](RunRecord& r) {
    r.status = kRestarting;
    r.attempt = 1;
    r.name = "renamed";  // undone
  });
  EXPECT_EQ(restarting.name, "m");
  EXPECT_EQ(restarting.started, created.started);
  EXPECT_EQ(restarting.world_size, 2);
  EXPECT_GE(restarting.heartbeat_unix, created.heartbeat_unix);
  EXPECT_TRUE(restarting.finished.empty());

  RunRecord failed = update_run(*store, "m", "r1", [](RunRecord& r) {
    r.status = kFailed;
    r.error = RunError{"rank 1 exited with 3", 3, 1};
  });
  EXPECT_FALSE(failed.finished.empty());
  const RunRecord stored = read_run(*store, "m", "r1");
  EXPECT_EQ(stored.status, kFailed);
  EXPECT_EQ(stored.attempt, 1);
  ASSERT_TRUE(stored.error.has_value());
  EXPECT_EQ(stored.error->rank, 1);
  EXPECT_EQ(stored.error->exit_code, 3);
}

TEST(Runs, UpdateRunRejectsAStatusThatIsNotStored) {
  testing::TempDir dir;
  auto store = storage::open_store(dir.path().string());
  add_run(*store, "m", "r1", 1000);
  const std::string message = testing::usage_error(
      [&] { update_run(*store, "m", "r1", [](RunRecord& r) { r.status = kLost; }); });
  EXPECT_NE(message.find("'lost'"), std::string::npos) << message;
  EXPECT_EQ(read_run(*store, "m", "r1").status, kRunning);
  EXPECT_FALSE(store->exists("runs/m/r2.json"));
  testing::usage_error([&] { update_run(*store, "m", "r2", [](RunRecord& r) { r.status = ""; }); });
  EXPECT_FALSE(store->exists("runs/m/r2.json"));
}

RunRecord table_record(double now) {
  RunRecord r;
  r.name = "fmnist";
  r.run_id = "20261130_101500-a1b2";
  r.status = kRunning;
  r.attempt = 1;
  r.world_size = 4;
  r.started = "2026-11-30T10:15:00Z";
  r.started_unix = now - 600;
  r.heartbeat_unix = now - 12;
  r.progress = {3, 10, 120, 469, 1500, 30, 250};
  r.latest_metrics = {{"test_acc", 0.88123}};
  return r;
}

TEST(Runs, TableShowsTheFields) {
  const double now = 1'800'000'000.0;
  RunRecord running = table_record(now);
  RunRecord done = table_record(now);
  done.run_id = "r0";
  done.status = kSucceeded;
  done.heartbeat_unix = now - 7500;
  done.version = "model_v20261130_090000";
  RunRecord stale = table_record(now);
  stale.run_id = "r-stale";
  stale.heartbeat_unix = now - 400;
  stale.latest_metrics = json::object();
  const std::string table = format_runs_table({running, done, stale}, now, 300);

  std::istringstream in(table);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << table;
  for (const char* header : {"MODEL", "RUN", "STATUS", "ATTEMPT", "WORLD", "STARTED", "HEARTBEAT",
                             "PROGRESS", "ETA", "TEST_ACC", "VERSION"}) {
    EXPECT_NE(lines[0].find(header), std::string::npos) << header;
  }
  for (const char* cell : {"fmnist", "20261130_101500-a1b2", "running", "2026-11-30T10:15:00Z",
                           "12s ago", "epoch 3/10 step 120/469", "4m10s", "0.8812"}) {
    EXPECT_NE(lines[1].find(cell), std::string::npos) << cell << "\n" << table;
  }
  EXPECT_NE(lines[2].find("succeeded"), std::string::npos) << table;
  EXPECT_NE(lines[2].find("2h05m ago"), std::string::npos) << table;
  EXPECT_NE(lines[2].find("model_v20261130_090000"), std::string::npos) << table;
  EXPECT_EQ(lines[2].find("4m10s"), std::string::npos) << "no ETA once done\n" << table;
  EXPECT_NE(lines[3].find("lost"), std::string::npos) << table;
  EXPECT_NE(lines[3].find("6m40s ago"), std::string::npos) << table;
  // Columns line up: every cell starts where its header does.
  EXPECT_EQ(lines[1].find("running"), lines[0].find("STATUS")) << table;
  EXPECT_EQ(lines[2].find("succeeded"), lines[0].find("STATUS")) << table;
  EXPECT_EQ(lines[1].find("12s ago"), lines[0].find("HEARTBEAT")) << table;
  EXPECT_EQ(lines[2].find("model_v"), lines[0].find("VERSION")) << table;
  for (const std::string& line : lines) EXPECT_NE(line.back(), ' ') << "'" << line << "'";
}

TEST(Runs, TableOfNoRunsSaysHowToStartOne) {
  const std::string table = format_runs_table({}, 0, 300);
  EXPECT_NE(table.find("no runs yet"), std::string::npos) << table;
  EXPECT_NE(table.find("`ddpipe run`"), std::string::npos) << table;
}

TEST(Runs, ShownJsonHasShownAndStoredStatus) {
  const double now = 1'800'000'000.0;
  RunRecord r = table_record(now);
  r.heartbeat_unix = now - 400;
  json doc = shown_json(r, now, 300);
  EXPECT_EQ(doc["status"], "lost");
  EXPECT_EQ(doc["stored_status"], "running");
  EXPECT_DOUBLE_EQ(doc["heartbeat_age_s"].get<double>(), 400);
  EXPECT_EQ(doc["progress"]["epoch"], 3);
  r.heartbeat_unix = 0;
  r.status = kFailed;
  doc = shown_json(r, now, 300);
  EXPECT_EQ(doc["status"], "failed");
  EXPECT_TRUE(doc["heartbeat_age_s"].is_null());
}

}  // namespace
}  // namespace ddpipe::runs
