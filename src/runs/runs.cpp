#include "runs/runs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/log.h"

namespace ddpipe::runs {
namespace {

using nlohmann::json;

constexpr char kComponent[] = "runs";
constexpr char kSuffix[] = ".json";

// The record stored under `key`, which must be the one of `name`/`run_id`. kData when the bytes
// are not a record or the record names another run.
RunRecord parse_record(const std::string& bytes, const std::string& key, const std::string& name,
                       const std::string& run_id) {
  json doc;
  try {
    doc = json::parse(bytes);
  } catch (const json::exception& e) {
    core::fail_data(key + " is not JSON: " + e.what());
  }
  RunRecord r = RunRecord::from_json(doc, key);
  if (r.name != name || r.run_id != run_id) {
    core::fail_data(key + " holds the record of run '" + r.name + "/" + r.run_id + "', expected '" +
                    name + "/" + run_id + "' (its key)");
  }
  return r;
}

// "runs/<name>/<run_id>.json" split into name and run id; nullopt for any other key.
std::optional<std::pair<std::string, std::string>> split_key(const std::string& key) {
  const std::string root = runs_prefix("");
  const size_t n = sizeof kSuffix - 1;
  if (key.rfind(root, 0) != 0 || key.size() <= root.size() + n ||
      key.compare(key.size() - n, n, kSuffix) != 0) {
    return std::nullopt;
  }
  const std::string rest = key.substr(root.size(), key.size() - root.size() - n);
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || rest.find('/', slash + 1) != std::string::npos) {
    return std::nullopt;
  }
  return std::make_pair(rest.substr(0, slash), rest.substr(slash + 1));
}

bool newer(const RunRecord& a, const RunRecord& b) {
  if (a.started_unix != b.started_unix) return a.started_unix > b.started_unix;
  if (a.started != b.started) return a.started > b.started;
  if (a.name != b.name) return a.name < b.name;
  return a.run_id > b.run_id;
}

// 45 → "45s", 250 → "4m10s", 7500 → "2h05m", 97200 → "1d03h".
std::string duration_text(double seconds) {
  const long long s = std::llround(std::max(0.0, seconds));
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
  }
  return buf;
}

std::string progress_text(const Progress& p) {
  if (p.epochs <= 0 && p.epoch <= 0) return "-";
  std::string out = "epoch " + std::to_string(p.epoch) + "/" + std::to_string(p.epochs);
  if (p.steps > 0) out += " step " + std::to_string(p.step) + "/" + std::to_string(p.steps);
  return out;
}

std::string test_acc_text(const json& metrics) {
  auto it = metrics.find("test_acc");
  if (it == metrics.end() || !it->is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", it->get<double>());
  return buf;
}

std::vector<std::string> table_row(const RunRecord& r, double now_unix, double lost_after_s) {
  const std::string status = shown_status(r, now_unix, lost_after_s);
  const bool live = status == kRunning || status == kRestarting;
  return {r.name,
          r.run_id,
          status,
          std::to_string(r.attempt),
          std::to_string(r.world_size),
          r.started.empty() ? "-" : r.started,
          r.heartbeat_unix > 0 ? duration_text(now_unix - r.heartbeat_unix) + " ago" : "-",
          progress_text(r.progress),
          live && r.progress.eta_job_s > 0 ? duration_text(r.progress.eta_job_s) : "-",
          test_acc_text(r.latest_metrics),
          r.version.empty() ? "-" : r.version};
}

}  // namespace

std::vector<RunRecord> list_runs(storage::Store& store, const std::string& name) {
  std::vector<RunRecord> out;
  for (const storage::ObjectInfo& object : store.list(runs_prefix(name))) {
    const auto parts = split_key(object.key);
    if (!parts) continue;  // not a record (another kind of object under runs/)
    const std::optional<std::string> bytes = store.try_get(object.key);
    if (!bytes) continue;  // removed since the listing
    try {
      out.push_back(parse_record(*bytes, object.key, parts->first, parts->second));
    } catch (const core::Error& e) {
      if (e.kind() != core::ErrorKind::kData) throw;
      core::log::warn(kComponent, "skipping a run record that cannot be read",
                      {{"key", object.key}, {"error", e.what()}});
    }
  }
  std::stable_sort(out.begin(), out.end(), newer);
  return out;
}

RunRecord read_run(storage::Store& store, const std::string& name, const std::string& run_id) {
  const std::string key = run_key(name, run_id);
  const std::optional<std::string> bytes = store.try_get(key);
  if (!bytes) {
    core::fail_not_found("model " + name + " has no run '" + run_id + "' in " + store.url() +
                         " (see `ddpipe runs list " + name + "`)");
  }
  return parse_record(*bytes, key, name, run_id);
}

RunRecord update_run(storage::Store& store, const std::string& name, const std::string& run_id,
                     const std::function<void(RunRecord&)>& change) {
  const std::string key = run_key(name, run_id);
  RunRecord r;
  if (const std::optional<std::string> bytes = store.try_get(key)) {
    r = parse_record(*bytes, key, name, run_id);
  } else {
    r.status = kRunning;
    r.started_unix = unix_now();
    r.started = iso_utc(r.started_unix);
  }
  change(r);
  r.name = name;
  r.run_id = run_id;
  if (!is_stored_status(r.status)) {
    core::fail_usage("run " + key + ": status '" + r.status +
                     "' is not one a record stores (running, restarting, succeeded, failed)");
  }
  r.heartbeat_unix = unix_now();
  r.heartbeat = iso_utc(r.heartbeat_unix);
  if (is_final_status(r.status) && r.finished.empty()) r.finished = r.heartbeat;
  store.put(key, r.to_json().dump(2));
  return r;
}

std::string format_runs_table(const std::vector<RunRecord>& records, double now_unix,
                              double lost_after_s) {
  if (records.empty()) {
    return "no runs yet (every training job records itself under runs/<model>/ in the store); "
           "start one with `ddpipe run`\n";
  }
  std::vector<std::vector<std::string>> rows = {{"MODEL", "RUN", "STATUS", "ATTEMPT", "WORLD",
                                                 "STARTED", "HEARTBEAT", "PROGRESS", "ETA",
                                                 "TEST_ACC", "VERSION"}};
  for (const RunRecord& r : records) rows.push_back(table_row(r, now_unix, lost_after_s));
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

json shown_json(const RunRecord& record, double now_unix, double lost_after_s) {
  json doc = record.to_json();
  doc["status"] = shown_status(record, now_unix, lost_after_s);
  doc["stored_status"] = record.status;
  doc["heartbeat_age_s"] =
      record.heartbeat_unix > 0 ? json(now_unix - record.heartbeat_unix) : json(nullptr);
  return doc;
}

}  // namespace ddpipe::runs
