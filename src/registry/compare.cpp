#include "registry/compare.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <map>
#include <set>
#include <sstream>

namespace ddpipe::registry {
namespace {

using nlohmann::json;

bool lower_is_better(const std::string& metric) {
  return metric.size() >= 4 && metric.compare(metric.size() - 4, 4, "loss") == 0;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

std::optional<double> metric_of(const Manifest& m, const std::string& metric) {
  auto it = m.final_metrics.find(metric);
  if (it == m.final_metrics.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// A YAML document as dotted keys → scalar text (sequences as flow text).
void flatten(const YAML::Node& n, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      flatten(kv.second, prefix.empty() ? k : prefix + "." + k, out);
    }
  } else if (n.IsScalar()) {
    out[prefix] = n.Scalar();
  } else if (n.IsDefined() && !n.IsNull()) {
    YAML::Emitter e;
    e << YAML::Flow << n;
    out[prefix] = e.c_str();
  } else {
    out[prefix] = "";
  }
}

std::map<std::string, std::string> flat_config(const std::string& yaml) {
  std::map<std::string, std::string> out;
  if (yaml.empty()) return out;
  try {
    flatten(YAML::Load(yaml), "", out);
  } catch (const YAML::Exception&) {
    out["(config)"] = "(unreadable YAML)";
  }
  return out;
}

// Numeric metrics of two objects side by side: [{metric, a, b, delta}].
json metric_rows(const json& a, const json& b) {
  std::set<std::string> names;
  for (const json* o : {&a, &b}) {
    if (!o->is_object()) continue;
    for (auto it = o->begin(); it != o->end(); ++it) {
      if (it.value().is_number() && it.key() != "epoch") names.insert(it.key());
    }
  }
  json rows = json::array();
  for (const auto& name : names) {
    json row = {{"metric", name}, {"a", nullptr}, {"b", nullptr}, {"delta", nullptr}};
    if (a.is_object() && a.contains(name) && a[name].is_number()) row["a"] = a[name];
    if (b.is_object() && b.contains(name) && b[name].is_number()) row["b"] = b[name];
    if (row["a"].is_number() && row["b"].is_number()) {
      row["delta"] = row["b"].get<double>() - row["a"].get<double>();
    }
    rows.push_back(row);
  }
  return rows;
}

std::string cell(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_number_float()) return fmt(v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

void metric_table(std::ostringstream& out, const json& rows, const std::string& indent) {
  for (const auto& r : rows) {
    char line[256];
    std::snprintf(
        line, sizeof line, "%s%-24s %14s %14s %14s\n", indent.c_str(),
        r["metric"].get<std::string>().c_str(), cell(r["a"]).c_str(), cell(r["b"]).c_str(),
        r["delta"].is_null()
            ? "-"
            : ((r["delta"].get<double>() >= 0 ? "+" : "") + fmt(r["delta"].get<double>())).c_str());
    out << line;
  }
}

}  // namespace

json GateVerdict::to_json() const {
  return {{"pass", pass},
          {"reason", reason},
          {"candidate", candidate},
          {"baseline", baseline},
          {"candidate_value", candidate_value ? json(*candidate_value) : json()},
          {"baseline_value", baseline_value ? json(*baseline_value) : json()}};
}

GateVerdict judge(const Gate& gate, const std::string& candidate_version, const Manifest& candidate,
                  const std::optional<std::pair<std::string, Manifest>>& baseline) {
  GateVerdict v;
  v.candidate = candidate_version;
  v.candidate_value = metric_of(candidate, gate.metric);
  const std::string cand = candidate_version + " " + gate.metric + "=" +
                           (v.candidate_value ? fmt(*v.candidate_value) : "(missing)");
  if (!baseline) {
    v.pass = v.candidate_value.has_value();
    v.reason = v.pass ? cand + "; alias " + gate.baseline_alias +
                            " does not exist yet: the candidate is promoted"
                      : "candidate " + candidate_version + " has no final metric '" + gate.metric +
                            "' in its manifest";
    return v;
  }
  v.baseline = baseline->first;
  const Manifest& base = baseline->second;
  v.baseline_value = metric_of(base, gate.metric);
  const std::string against = gate.baseline_alias + " (" + baseline->first + ") " + gate.metric +
                              "=" + (v.baseline_value ? fmt(*v.baseline_value) : "(missing)");
  if (!v.candidate_value || !v.baseline_value) {
    v.reason = cand + " vs " + against + ": the metric is missing, cannot compare";
    return v;
  }
  if (candidate.dataset.digest != base.dataset.digest) {
    v.reason = cand + " vs " + against + ": evaluated on different datasets (" +
               candidate.dataset.digest.substr(0, 12) + " vs " + base.dataset.digest.substr(0, 12) +
               "), not comparable";
    return v;
  }
  const double gain = lower_is_better(gate.metric) ? *v.baseline_value - *v.candidate_value
                                                   : *v.candidate_value - *v.baseline_value;
  v.pass = gain >= gate.min_delta && !(gate.min_delta <= 0 && gain <= 0);
  v.reason = cand + " vs " + against + ": " + (gain >= 0 ? "+" : "") + fmt(gain) +
             (v.pass ? " >= " : " < ") + "min_delta " + fmt(gate.min_delta) +
             (gate.min_delta <= 0 && gain <= 0 ? " (not better)" : "") +
             (v.pass ? ": promoted" : ": refused");
  return v;
}

json diff(const Manifest& a, const Manifest& b) {
  json out;
  out["a"] = a.version;
  out["b"] = b.version;
  const auto ca = flat_config(a.config), cb = flat_config(b.config);
  std::set<std::string> keys;
  for (const auto* c : {&ca, &cb}) {
    for (const auto& [k, v] : *c) keys.insert(k);
  }
  json config = json::array();
  for (const auto& k : keys) {
    auto ia = ca.find(k), ib = cb.find(k);
    json va = ia == ca.end() ? json() : json(ia->second);
    json vb = ib == cb.end() ? json() : json(ib->second);
    if (va != vb) config.push_back({{"key", k}, {"a", va}, {"b", vb}});
  }
  out["config"] = config;
  out["dataset"] = {{"a", a.dataset.name + "@" + a.dataset.digest},
                    {"b", b.dataset.name + "@" + b.dataset.digest},
                    {"same", a.dataset.digest == b.dataset.digest}};
  out["final"] = metric_rows(a.final_metrics, b.final_metrics);
  json epochs = json::array();
  const size_t n = std::max(a.epochs.size(), b.epochs.size());
  for (size_t i = 0; i < n; ++i) {
    const json ea = i < a.epochs.size() ? a.epochs[i] : json::object();
    const json eb = i < b.epochs.size() ? b.epochs[i] : json::object();
    epochs.push_back({{"epoch", i + 1}, {"metrics", metric_rows(ea, eb)}});
  }
  out["epochs"] = epochs;
  return out;
}

std::string diff_text(const json& d) {
  std::ostringstream out;
  out << "a: " << d["a"].get<std::string>() << "\nb: " << d["b"].get<std::string>() << "\n\n";
  out << "dataset: " << (d["dataset"]["same"].get<bool>() ? "same " : "DIFFERENT ")
      << d["dataset"]["a"].get<std::string>();
  if (!d["dataset"]["same"].get<bool>()) out << " vs " << d["dataset"]["b"].get<std::string>();
  out << "\n\nconfig (keys that differ):\n";
  if (d["config"].empty()) out << "  (none)\n";
  for (const auto& c : d["config"]) {
    out << "  " << c["key"].get<std::string>() << ": " << cell(c["a"]) << " -> " << cell(c["b"])
        << "\n";
  }
  char head[256];
  std::snprintf(head, sizeof head, "\nfinal metrics:\n  %-24s %14s %14s %14s\n", "metric", "a", "b",
                "delta (b-a)");
  out << head;
  metric_table(out, d["final"], "  ");
  for (const auto& e : d["epochs"]) {
    out << "epoch " << e["epoch"].get<int64_t>() << ":\n";
    metric_table(out, e["metrics"], "  ");
  }
  return out.str();
}

}  // namespace ddpipe::registry
