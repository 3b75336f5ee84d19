// ddpipe::runs — the record of one training job (a "run"), as stored in the artifact store at
// runs/<name>/<run_id>.json: who ran, where, since when, how far it got, how it ended.
//
// Every job has one, including one that failed or is still running. Rank 0 writes it
// (RunTracker, tracker.h), the local launcher amends it between attempts (update_run, runs.h),
// `ddpipe runs list|show` reads it (runs.h).
//
// schema_version: 1 is written by this build; a later one is rejected (core::Error kData), as is
// a record missing name, run_id or status, or with a field of the wrong type. Every other field
// reads as its default when absent. Keys this build does not know are kept in `extra` and
// written back by to_json().
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ddpipe::runs {

// The stored statuses of a run. kLost is never stored: shown_status() derives it.
inline constexpr const char* kRunning = "running";        // an attempt is training
inline constexpr const char* kRestarting = "restarting";  // between attempts (the launcher)
inline constexpr const char* kSucceeded = "succeeded";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kLost = "lost";  // running/restarting with a stale heartbeat

// Whether `status` is one a record may store (running, restarting, succeeded, failed).
bool is_stored_status(const std::string& status);
// Whether `status` ends a run (succeeded, failed).
bool is_final_status(const std::string& status);

// How far training got. `epoch` is 1-based as shown to users (0 before the first epoch);
// `step` counts optimizer steps within that epoch, of `steps`. ETAs are in seconds, 0 = unknown.
struct Progress {
  int64_t epoch = 0, epochs = 0, step = 0, steps = 0;
  double images_per_second = 0, eta_epoch_s = 0, eta_job_s = 0;
};

// Why a run failed: the error message, the process exit code, the failing rank (-1: unknown).
struct RunError {
  std::string message;
  int exit_code = 0;
  int64_t rank = -1;
};

// An attempt of the job that failed (the local launcher records them): which attempt, its exit
// code, the rank that failed first and its error.
struct FailedAttempt {
  int64_t attempt = 0;
  int exit_code = 0;
  int64_t failed_rank = -1;
  std::string reason;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FailedAttempt, attempt, exit_code, failed_rank,
                                                reason)

struct RunRecord {
  static constexpr int64_t kSchemaVersion = 1;  // written by this build

  int64_t schema_version = kSchemaVersion;  // as stored
  std::string name;                         // the model trained
  std::string run_id;                       // unique within the model
  std::string status;                       // one of the stored statuses above
  int64_t attempt = 0;  // the launcher's attempt, 0 for the first (= restarts so far)
  std::vector<FailedAttempt> attempts;  // the failed ones, oldest first
  int64_t world_size = 0;
  std::vector<std::string> hosts;  // where the ranks run
  // ISO 8601 UTC ("2026-11-30T10:15:00Z"); finished is "" until the run ends.
  std::string started, heartbeat, finished;
  // The same instants as seconds since the Unix epoch, for arithmetic (0 = unknown).
  double started_unix = 0, heartbeat_unix = 0;
  Progress progress;
  nlohmann::json latest_metrics = nlohmann::json::object();  // of the last evaluation
  std::optional<RunError> error;                             // set when failed
  std::string version;                                       // the model version it published
  // The stamp of the run's metrics (metrics/<name>/metrics_v<stamp>.json, .steps.jsonl), set
  // once training starts; "" for records from before it existed.
  std::string stamp;
  nlohmann::json extra = nlohmann::json::object();  // keys unknown to this build, kept as is

  // The document as stored; always written with schema_version kSchemaVersion.
  nlohmann::json to_json() const;
  // `where` names the record in errors (e.g. its store key). Throws core::Error(kData) naming
  // `where` and the field for a document that is not an object, a later schema version, a
  // missing name/run_id/status, a field of the wrong type, or a name, run_id, version or stamp
  // that is not a valid name (storage::validate_name's rule: these become parts of keys).
  static RunRecord from_json(const nlohmann::json& doc, const std::string& where);
};

// The status to show: kLost when the stored status is running or restarting and the heartbeat
// (heartbeat_unix) is more than `lost_after_s` seconds older than `now_unix`; else the stored one.
std::string shown_status(const RunRecord& record, double now_unix, double lost_after_s);

// "runs/<name>/<run_id>.json". Throws core::Error(kUsage) naming the model name or run id that
// breaks storage::validate_name's rule.
std::string run_key(const std::string& name, const std::string& run_id);
// "runs/<name>/", or "runs/" for an empty name (all models). kUsage for a bad name.
std::string runs_prefix(const std::string& name);

// Seconds since the Unix epoch, now (wall clock, fractional).
double unix_now();
// `unix_seconds` as ISO 8601 UTC with seconds, as core::iso_timestamp() writes "now".
std::string iso_utc(double unix_seconds);

}  // namespace ddpipe::runs
