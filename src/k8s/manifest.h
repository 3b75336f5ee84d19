// ddpipe::k8s — Kubernetes objects as JSON values, read from and written to YAML streams.
//
// An object is an nlohmann::ordered_json, so that rendered manifests keep the conventional key
// order (apiVersion, kind, metadata, spec). No validation happens here; tests check the output
// against the Kubernetes and Kubeflow schemas.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ddpipe::k8s {

using Object = nlohmann::ordered_json;

// Parses a YAML stream ("---"-separated documents), skipping empty documents. Quoted and block
// scalars stay strings; plain scalars become integers, numbers, booleans (true/false) or null
// (null, ~, empty) as in YAML 1.2, otherwise strings. Throws core::Error(kUsage) naming `origin`
// and the line for invalid YAML.
std::vector<Object> parse_manifests(const std::string& yaml, const std::string& origin);

// One YAML stream: every document starts with "---"; `header` (may be empty) becomes comment
// lines at the top. Strings that YAML 1.1 or 1.2 would read as another type ("23456", "true",
// "on", "") are quoted; multi-line strings are literal blocks.
std::string to_yaml(const std::vector<Object>& objects, const std::string& header = "");

// The objects of `kind` in `objects`, in order.
std::vector<Object> of_kind(const std::vector<Object>& objects, const std::string& kind);

}  // namespace ddpipe::k8s
