// ddpipe::core — timestamps used in artifact names and manifests (UTC).
#pragma once

#include <string>

namespace ddpipe::core {

// "YYYYMMDD_HHMMSS", the suffix of model versions (model_v20261130_101500).
std::string version_timestamp();
// ISO 8601 with seconds, "2026-11-30T10:15:00Z".
std::string iso_timestamp();
// Seconds since an arbitrary monotonic origin.
double monotonic_seconds();

}  // namespace ddpipe::core
