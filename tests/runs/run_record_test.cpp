#include "runs/run_record.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "storage/store.h"
#include "test_util.h"

namespace ddpipe::runs {
namespace {

using nlohmann::json;

RunRecord full_record() {
  RunRecord r;
  r.name = "fmnist";
  r.run_id = "20261130_101500-a1b2";
  r.status = kFailed;
  r.attempt = 2;
  r.attempts = {{0, 137, 1, "killed by signal 9"}, {1, 128, 0, "collective timed out"}};
  r.world_size = 4;
  r.hosts = {"node-a", "node-b"};
  r.started = "2026-11-30T10:15:00Z";
  r.heartbeat = "2026-11-30T10:20:00Z";
  r.finished = "2026-11-30T10:20:01Z";
  r.started_unix = 1796033700.25;
  r.heartbeat_unix = 1796034000.5;
  r.progress = {3, 10, 120, 469, 1534.5, 12.5, 250.0};
  r.latest_metrics = {{"test_acc", 0.8812}, {"test_loss", 0.33}};
  r.error = RunError{"rank 1: collective timed out", 128, 1};
  r.version = "model_v20261130_102000";
  r.stamp = "20261130_102000";
  return r;
}

TEST(RunRecord, FullRecordSurvivesJson) {
  const RunRecord r = full_record();
  const json doc = json::parse(r.to_json().dump());
  EXPECT_EQ(doc["schema_version"], 1);
  EXPECT_EQ(doc["progress"]["step"], 120);
  EXPECT_EQ(doc["error"]["rank"], 1);

  const RunRecord back = RunRecord::from_json(doc, "runs/fmnist/x.json");
  EXPECT_EQ(back.name, r.name);
  EXPECT_EQ(back.run_id, r.run_id);
  EXPECT_EQ(back.status, kFailed);
  EXPECT_EQ(back.attempt, 2);
  ASSERT_EQ(back.attempts.size(), 2u);
  EXPECT_EQ(back.attempts[0].exit_code, 137);
  EXPECT_EQ(back.attempts[1].failed_rank, 0);
  EXPECT_EQ(back.attempts[1].reason, "collective timed out");
  EXPECT_EQ(back.world_size, 4);
  EXPECT_EQ(back.hosts, r.hosts);
  EXPECT_EQ(back.started, r.started);
  EXPECT_EQ(back.heartbeat, r.heartbeat);
  EXPECT_EQ(back.finished, r.finished);
  EXPECT_DOUBLE_EQ(back.started_unix, r.started_unix);
  EXPECT_DOUBLE_EQ(back.heartbeat_unix, r.heartbeat_unix);
  EXPECT_EQ(back.progress.epoch, 3);
  EXPECT_EQ(back.progress.epochs, 10);
  EXPECT_EQ(back.progress.step, 120);
  EXPECT_EQ(back.progress.steps, 469);
  EXPECT_DOUBLE_EQ(back.progress.images_per_second, 1534.5);
  EXPECT_DOUBLE_EQ(back.progress.eta_epoch_s, 12.5);
  EXPECT_DOUBLE_EQ(back.progress.eta_job_s, 250.0);
  EXPECT_EQ(back.latest_metrics, r.latest_metrics);
  ASSERT_TRUE(back.error.has_value());
  EXPECT_EQ(back.error->message, "rank 1: collective timed out");
  EXPECT_EQ(back.error->exit_code, 128);
  EXPECT_EQ(back.error->rank, 1);
  EXPECT_EQ(back.version, r.version);
  EXPECT_EQ(back.stamp, r.stamp);
  EXPECT_TRUE(back.extra.empty()) << back.extra.dump();
  EXPECT_EQ(back.to_json(), r.to_json());
}

TEST(RunRecord, MinimalRecordReadsDefaults) {
  const RunRecord r = RunRecord::from_json(
      {{"name", "m"}, {"run_id", "r1"}, {"status", "running"}, {"error", nullptr}}, "k");
  EXPECT_EQ(r.schema_version, 1);
  EXPECT_EQ(r.attempt, 0);
  EXPECT_EQ(r.progress.epoch, 0);
  EXPECT_FALSE(r.error.has_value());
  EXPECT_TRUE(r.latest_metrics.is_object());
  EXPECT_TRUE(r.extra.empty()) << r.extra.dump();
}

TEST(RunRecord, UnknownKeysAreKept) {
  json doc = full_record().to_json();
  doc["gpu"] = {{"model", "A100"}};
  doc["progress"]["tokens"] = 12345;
  const RunRecord r = RunRecord::from_json(doc, "k");
  EXPECT_EQ(r.extra["gpu"]["model"], "A100");
  EXPECT_EQ(r.extra["progress"]["tokens"], 12345);
  const json again = r.to_json();
  EXPECT_EQ(again["gpu"]["model"], "A100");
  EXPECT_EQ(again["progress"]["tokens"], 12345);
  EXPECT_EQ(again["progress"]["epoch"], 3);  // known fields of the same group still written
}

// Each bad document must fail with kData, naming where and the field.
TEST(RunRecord, BadDocumentsNameTheField) {
  const json good = full_record().to_json();
  struct Case {
    std::string field;
    json doc;
  };
  std::vector<Case> cases;
  auto with = [&](const std::string& pointer, const json& value) {
    json d = good;
    d[json::json_pointer(pointer)] = value;
    return d;
  };
  json no_status = good;
  no_status.erase("status");
  cases.push_back({"status", no_status});
  cases.push_back({"status", with("/status", "")});
  cases.push_back({"attempt", with("/attempt", "three")});
  cases.push_back({"attempts", with("/attempts", "none")});
  cases.push_back({"hosts", with("/hosts", json::array({1, 2}))});
  cases.push_back({"progress", with("/progress", "half")});
  cases.push_back({"progress.eta_job_s", with("/progress/eta_job_s", "soon")});
  cases.push_back({"error", with("/error", "boom")});
  cases.push_back({"error.exit_code", with("/error/exit_code", "x")});
  cases.push_back({"latest_metrics", with("/latest_metrics", json::array())});
  cases.push_back({"schema_version", with("/schema_version", 2)});
  cases.push_back({"JSON object", json::array()});
  // The fields that become parts of keys: a hostile record never names a key outside its place.
  cases.push_back({"field name is '../x'", with("/name", "../x")});
  cases.push_back({"field run_id is 'a/b'", with("/run_id", "a/b")});
  cases.push_back({"field version is '../../etc'", with("/version", "../../etc")});
  cases.push_back({"field stamp is '../../x'", with("/stamp", "../../x")});
  cases.push_back({"field stamp is 'a\\x00b'", with("/stamp", std::string("a\0b", 3))});
  for (const Case& c : cases) {
    const std::string message = testing::error_of(
        core::ErrorKind::kData, [&] { RunRecord::from_json(c.doc, "runs/fmnist/bad.json"); });
    EXPECT_NE(message.find("runs/fmnist/bad.json"), std::string::npos) << message;
    EXPECT_NE(message.find(c.field), std::string::npos) << c.field << ": " << message;
  }
}

TEST(RunRecord, KeysOfValidNames) {
  EXPECT_EQ(run_key("fmnist", "20261130_101500-a1b2"), "runs/fmnist/20261130_101500-a1b2.json");
  EXPECT_EQ(run_key("a.b_c-1", "r.1"), "runs/a.b_c-1/r.1.json");
  EXPECT_EQ(runs_prefix(""), "runs/");
  EXPECT_EQ(runs_prefix("fmnist"), "runs/fmnist/");
}

TEST(RunRecord, BadNamesAreUsageErrors) {
  for (const std::string bad : {"", ".hidden", "../x", "a/b", "a b", "ü"}) {
    std::string message = testing::usage_error([&] { run_key(bad, "r1"); });
    const std::string shown = storage::printable(bad);  // "ü" as \xc3\xbc
    EXPECT_NE(message.find("model name '" + shown + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("expected 1 to 128 letters, digits"), std::string::npos) << message;
    message = testing::usage_error([&] { run_key("m", bad); });
    EXPECT_NE(message.find("run id '" + shown + "'"), std::string::npos) << message;
  }
  EXPECT_NE(testing::usage_error([] { runs_prefix(".x"); }).find("model name"), std::string::npos);
}

TEST(RunRecord, StatusNames) {
  for (const char* s : {kRunning, kRestarting, kSucceeded, kFailed}) {
    EXPECT_TRUE(is_stored_status(s)) << s;
  }
  EXPECT_FALSE(is_stored_status(kLost));
  EXPECT_FALSE(is_stored_status("done"));
  EXPECT_TRUE(is_final_status(kSucceeded));
  EXPECT_TRUE(is_final_status(kFailed));
  EXPECT_FALSE(is_final_status(kRunning));
  EXPECT_FALSE(is_final_status(kRestarting));
}

TEST(RunRecord, ShownStatusJudgesTheHeartbeat) {
  const double now = 1'800'000'000.0;
  RunRecord r;
  r.heartbeat_unix = now - 10;
  r.status = kRunning;
  EXPECT_EQ(shown_status(r, now, 60), kRunning);
  r.heartbeat_unix = now - 61;
  EXPECT_EQ(shown_status(r, now, 60), kLost);
  r.status = kRestarting;
  EXPECT_EQ(shown_status(r, now, 60), kLost);
  r.heartbeat_unix = now - 10;
  EXPECT_EQ(shown_status(r, now, 60), kRestarting);
  r.heartbeat_unix = now - 100000;
  r.status = kSucceeded;
  EXPECT_EQ(shown_status(r, now, 60), kSucceeded);
  r.status = kFailed;
  EXPECT_EQ(shown_status(r, now, 60), kFailed);
  r.status = kRunning;
  r.heartbeat_unix = 0;  // never beat
  EXPECT_EQ(shown_status(r, now, 60), kLost);
}

TEST(RunRecord, IsoTimestamps) {
  EXPECT_EQ(iso_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(iso_utc(1796033700.9), "2026-11-30T10:15:00Z");
  const double now = unix_now();
  EXPECT_GT(now, 1'700'000'000.0);
  EXPECT_LT(now, 4'000'000'000.0);
}

}  // namespace
}  // namespace ddpipe::runs
