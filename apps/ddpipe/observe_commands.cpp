// `ddpipe runs`, `ddpipe metrics` and `ddpipe report`: seeing what a job did and is doing
// (docs/telemetry.md). Argument wiring around runs::, registry:: and report::.
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "registry/registry.h"
#include "report/report.h"
#include "runs/runs.h"
#include "storage/store.h"

namespace ddpipe::app {
namespace {

using nlohmann::json;

// A JSON value as a CSV cell: numbers and strings as themselves (quoted when they need it),
// anything else as compact JSON.
std::string csv_cell(const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// Nested objects become dotted columns: {"straggler": {"rank": 1}} → straggler.rank.
void flatten(const json& row, const std::string& prefix, json& out) {
  for (const auto& [key, value] : row.items()) {
    if (value.is_object()) {
      flatten(value, prefix + key + ".", out);
    } else {
      out[prefix + key] = value;
    }
  }
}

// Rows as CSV: "epoch" first, then one column per key in the order keys first appear (stored
// objects keep their keys sorted).
void print_csv(const std::vector<json>& rows) {
  std::vector<std::string> columns = {"epoch"};
  std::set<std::string> seen = {"epoch"};
  std::vector<json> flat;
  for (const auto& row : rows) {
    json f = json::object();
    flatten(row, "", f);
    for (const auto& [key, value] : f.items()) {
      if (seen.insert(key).second) columns.push_back(key);
    }
    flat.push_back(std::move(f));
  }
  for (size_t i = 0; i < columns.size(); ++i) std::cout << (i ? "," : "") << csv_cell(columns[i]);
  std::cout << "\n";
  for (const auto& f : flat) {
    for (size_t i = 0; i < columns.size(); ++i) {
      std::cout << (i ? "," : "") << (f.contains(columns[i]) ? csv_cell(f[columns[i]]) : "");
    }
    std::cout << "\n";
  }
}

}  // namespace

int cmd_runs(const Args& a) {
  const auto config = load(a);
  auto store = storage::open_store(config);
  const std::string sub = a.positional.empty() ? "list" : a.positional[0];
  const double lost_after = config.telemetry.runs_lost_after_s;
  if (sub == "list") {
    if (a.positional.size() > 2) core::fail_usage("usage: ddpipe runs list [NAME] [--json]");
    const auto records = runs::list_runs(*store, a.positional.size() == 2 ? a.positional[1] : "");
    if (!a.has("json")) {
      std::cout << runs::format_runs_table(records, runs::unix_now(), lost_after);
      return 0;
    }
    json out = json::array();
    for (const auto& r : records) out.push_back(runs::shown_json(r, runs::unix_now(), lost_after));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (sub == "show") {
    if (a.positional.size() != 3) core::fail_usage("usage: ddpipe runs show NAME RUN_ID");
    const auto record = runs::read_run(*store, a.positional[1], a.positional[2]);
    std::cout << runs::shown_json(record, runs::unix_now(), lost_after).dump(2) << "\n";
    return 0;
  }
  core::fail_usage("ddpipe runs: unknown subcommand '" + sub + "' (list or show)");
}

int cmd_metrics(const Args& a) {
  const auto config = load(a);
  const std::string format = a.option("format", "csv");
  if (format != "csv" && format != "json") {
    core::fail_usage("--format: expected csv or json, got '" + format + "'");
  }
  if (a.positional.empty() || a.positional.size() > 2) {
    core::fail_usage("usage: ddpipe metrics NAME [REF] [--steps] [--format csv|json]");
  }
  auto store = storage::open_store(config);
  registry::Registry reg(*store);
  const std::string& name = a.positional[0];
  const std::string version =
      reg.resolve(name, a.positional.size() == 2 ? a.positional[1] : "latest");
  std::vector<json> rows;
  if (a.has("steps")) {
    rows = reg.read_steps(name, version);
    if (rows.empty()) {
      core::log::warn("metrics",
                      "this version has no step history (trained before ddpipe kept "
                      "one, or with log.every_steps and log.every_s both 0)",
                      {{"model", name}, {"version", version}});
    }
  } else {
    for (const auto& e : reg.manifest(name, version).epochs) rows.push_back(e);
  }
  if (format == "json") {
    std::cout << json(rows).dump(2) << "\n";
  } else {
    print_csv(rows);
  }
  return 0;
}

int cmd_report(const Args& a) {
  const auto config = load(a);
  if (a.positional.empty()) core::fail_usage("usage: ddpipe report NAME [REF...] [--out FILE]");
  auto store = storage::open_store(config);
  registry::Registry reg(*store);
  const std::string& name = a.positional[0];
  const std::vector<std::string> refs(a.positional.begin() + 1, a.positional.end());
  const std::string html = report::render_html(report::load_report(reg, name, refs));
  const std::string out = a.option("out", "report-" + name + ".html");
  core::write_file_atomic(out, html);
  std::cout << out << "\n";
  return 0;
}

}  // namespace ddpipe::app
