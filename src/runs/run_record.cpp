#include "runs/run_record.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <string>

#include "core/error.h"
#include "core/json_document.h"
#include "storage/store.h"

namespace ddpipe::runs {
namespace {

using nlohmann::json;

namespace json_document = core::json_document;
using json_document::dotted;
using json_document::find;
using json_document::Need;
using json_document::read_value;

// Every plain field of a record once: its JSON pointer, the member holding it, whether a record
// is usable without it. `R` is RunRecord or const RunRecord (reading or writing). `error` is
// optional as a whole and handled apart.
template <class R, class Visit>
void for_each_field(R& r, Visit&& visit) {
  visit("/name", r.name, Need::kRequired);
  visit("/run_id", r.run_id, Need::kRequired);
  visit("/status", r.status, Need::kRequired);
  visit("/attempt", r.attempt, Need::kOptional);
  visit("/attempts", r.attempts, Need::kOptional);
  visit("/world_size", r.world_size, Need::kOptional);
  visit("/hosts", r.hosts, Need::kOptional);
  visit("/started", r.started, Need::kOptional);
  visit("/heartbeat", r.heartbeat, Need::kOptional);
  visit("/finished", r.finished, Need::kOptional);
  visit("/started_unix", r.started_unix, Need::kOptional);
  visit("/heartbeat_unix", r.heartbeat_unix, Need::kOptional);
  visit("/progress/epoch", r.progress.epoch, Need::kOptional);
  visit("/progress/epochs", r.progress.epochs, Need::kOptional);
  visit("/progress/step", r.progress.step, Need::kOptional);
  visit("/progress/steps", r.progress.steps, Need::kOptional);
  visit("/progress/images_per_second", r.progress.images_per_second, Need::kOptional);
  visit("/progress/eta_epoch_s", r.progress.eta_epoch_s, Need::kOptional);
  visit("/progress/eta_job_s", r.progress.eta_job_s, Need::kOptional);
  visit("/latest_metrics", r.latest_metrics, Need::kOptional);
  visit("/version", r.version, Need::kOptional);
  visit("/stamp", r.stamp, Need::kOptional);
}

std::optional<RunError> read_error(const json& doc, const std::string& where) {
  const json* e = find(doc, json::json_pointer("/error"), where);
  if (e == nullptr) return std::nullopt;
  if (!e->is_object()) {
    core::fail_data(where + ": field error must be an object or null, got " + e->type_name());
  }
  RunError out;
  if (const json* v = find(doc, json::json_pointer("/error/message"), where)) {
    read_value(*v, out.message, "error.message", where);
  }
  if (const json* v = find(doc, json::json_pointer("/error/exit_code"), where)) {
    read_value(*v, out.exit_code, "error.exit_code", where);
  }
  if (const json* v = find(doc, json::json_pointer("/error/rank"), where)) {
    read_value(*v, out.rank, "error.rank", where);
  }
  return out;
}

// The fields of a stored record that become parts of keys (runs/<name>/<run_id>.json,
// models/<name>/<version>/, metrics/<name>/metrics_v<stamp>.json): an edited or hostile record
// is a data error naming the field, never a key outside its place.
void check_key_fields(const RunRecord& r, const std::string& where) {
  auto check = [&](const char* field, const std::string& value, bool required) {
    if ((required || !value.empty()) && !storage::is_valid_name(value)) {
      core::fail_data(where + ": field " + field + " is '" + storage::printable(value) +
                      "', expected 1 to " + std::to_string(storage::kMaxNameBytes) +
                      " letters, digits, '.', '_' and '-', not starting with '.'");
    }
  };
  check("name", r.name, true);
  check("run_id", r.run_id, true);
  check("version", r.version, false);
  check("stamp", r.stamp, false);
}

}  // namespace

bool is_stored_status(const std::string& status) {
  return status == kRunning || status == kRestarting || is_final_status(status);
}

bool is_final_status(const std::string& status) {
  return status == kSucceeded || status == kFailed;
}

json RunRecord::to_json() const {
  json doc =
      json_document::write(*this, extra, kSchemaVersion,
                           [](const RunRecord& r, auto&& visit) { for_each_field(r, visit); });
  if (error) {
    doc["error"] = {
        {"message", error->message}, {"exit_code", error->exit_code}, {"rank", error->rank}};
  } else {
    doc["error"] = nullptr;
  }
  return doc;
}

RunRecord RunRecord::from_json(const json& doc, const std::string& where) {
  if (!doc.is_object()) core::fail_data(where + ": a run record must be a JSON object");
  RunRecord r;
  r.schema_version = json_document::read_schema_version(doc, where, kSchemaVersion);
  r.extra = json_document::read(doc, where, r,
                                [](RunRecord& r, auto&& visit) { for_each_field(r, visit); });
  if (r.status.empty()) core::fail_data(where + ": field status is empty");
  if (!r.latest_metrics.is_object()) {
    core::fail_data(where + ": field latest_metrics must be an object, got " +
                    r.latest_metrics.type_name());
  }
  check_key_fields(r, where);
  r.error = read_error(doc, where);
  r.extra.erase("error");
  return r;
}

std::string shown_status(const RunRecord& record, double now_unix, double lost_after_s) {
  const bool live = record.status == kRunning || record.status == kRestarting;
  if (live && now_unix - record.heartbeat_unix > lost_after_s) return kLost;
  return record.status;
}

std::string run_key(const std::string& name, const std::string& run_id) {
  storage::validate_name("model name", name);
  storage::validate_name("run id", run_id);
  return "runs/" + name + "/" + run_id + ".json";
}

std::string runs_prefix(const std::string& name) {
  if (name.empty()) return "runs/";
  storage::validate_name("model name", name);
  return "runs/" + name + "/";
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string iso_utc(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(std::floor(unix_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace ddpipe::runs
