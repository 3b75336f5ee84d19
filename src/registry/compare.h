// ddpipe::registry — comparing versions: the promotion gate and `ddpipe models diff`.
// Pure functions of manifests (no store access), so they are tested without one.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "registry/manifest.h"

namespace ddpipe::registry {

// "Promote only if the candidate beats the baseline on `metric` by at least `min_delta`, both
// measured on the same dataset digest."
struct Gate {
  std::string baseline_alias;  // the alias whose current version is the baseline
  std::string metric = "test_acc";
  double min_delta = 0.0;
};

struct GateVerdict {
  bool pass = false;
  std::string reason;               // one sentence: the comparison and the decision
  std::string candidate, baseline;  // versions ("" baseline: the alias did not exist)
  std::optional<double> candidate_value, baseline_value;
  nlohmann::json to_json() const;
};

// Judges `candidate` (version `candidate_version`) against `baseline` (nullopt when the
// baseline alias does not exist yet: then it passes). Fails (pass = false, reason says why)
// when the metric is missing from a manifest's final metrics, when the dataset digests differ,
// or when candidate - baseline < min_delta. Higher is better for every metric except those
// whose name ends in "loss".
GateVerdict judge(const Gate& gate, const std::string& candidate_version, const Manifest& candidate,
                  const std::optional<std::pair<std::string, Manifest>>& baseline);

// `ddpipe models diff`: {"a", "b", "config": [{key, a, b}] (keys whose values differ, from the
// manifests' config YAML, flattened to dotted keys), "dataset": {a, b, same}, "final":
// [{metric, a, b, delta}], "epochs": [{epoch, metrics: [{metric, a, b, delta}]}]}.
nlohmann::json diff(const Manifest& a, const Manifest& b);

// The diff as an aligned text table.
std::string diff_text(const nlohmann::json& d);

}  // namespace ddpipe::registry
