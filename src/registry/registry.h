// ddpipe::registry — model versions, aliases, checkpoints and metrics in the artifact store.
// Needs no libtorch: model files are opaque bytes here, so `ddpipe models list` is instant.
//
// Layout (the buckets users of the original MinIO setup know):
//   models/<model>/model_v<YYYYMMDD_HHMMSS>/{model.pt, manifest.json}   a version (manifest.h)
//   models/<model>/model_latest                                         alias → newest version
//   models/<model>/aliases/<alias>                                      promoted aliases
//   models/<model>/checkpoints/epoch_<n>/{model.pt, …, state.json}      after n epochs
//   models/<model>/checkpoints/epoch_<n>_step_<k>/…                     k steps into epoch n+1
//   metrics/<model>/metrics_v<YYYYMMDD_HHMMSS>.json                     a run's metrics
// A version or checkpoint is complete once its manifest.json / state.json exists: those are
// written last, and an alias is only moved to a complete version.
// Errors: core::Error(kNotFound) for unknown models, versions, aliases; kUsage for bad names.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "registry/manifest.h"
#include "storage/store.h"

namespace ddpipe::registry {

using Files = std::map<std::string, std::string>;  // file name → bytes

// Where a checkpoint is in training: `epoch` epochs done plus `step` optimizer steps of the next.
struct CheckpointRef {
  int64_t epoch = 0;
  int64_t step = 0;
  std::string id() const;  // "epoch_<n>" or "epoch_<n>_step_<k>"
  bool operator<(const CheckpointRef& o) const {
    return epoch != o.epoch ? epoch < o.epoch : step < o.step;
  }
};

class Registry {
 public:
  explicit Registry(storage::Store& store) : store_(store) {}

  // Writes `files` then manifest.json (`manifest` with model, version and created set) under a
  // new version and points model_latest at it. Returns the version ("model_v20261130_101500").
  std::string publish(const std::string& model, const Files& files, const Manifest& manifest);
  // The same with the manifest as a JSON document, stored as given (plus "model", "version",
  // "created") and not checked: for documents the typed Manifest cannot express — an older
  // schema, or a broken manifest in a test. Prefer the typed overload.
  std::string publish(const std::string& model, const Files& files, nlohmann::json manifest);

  // Points alias ("latest" means model_latest) at an existing complete version.
  void set_alias(const std::string& model, const std::string& alias, const std::string& version);
  // Resolves "latest", "model_latest", an alias name or a version name to a version name.
  std::string resolve(const std::string& model, const std::string& ref);
  std::map<std::string, std::string> aliases(const std::string& model);

  std::vector<std::string> models();
  // Complete versions, oldest first.
  std::vector<std::string> versions(const std::string& model);
  // The version's manifest, parsed and checked (Manifest::from_json): core::Error(kNotFound)
  // for an unknown version, kData for a manifest this build cannot use.
  Manifest manifest(const std::string& model, const std::string& version);
  // The stored manifest.json as is (`ddpipe models show`); kStorage if it is not JSON.
  nlohmann::json manifest_json(const std::string& model, const std::string& version);
  std::string read(const std::string& model, const std::string& version, const std::string& file);

  // Checkpoints: uploads a local directory holding the checkpoint's files and state.json. Each
  // file is streamed from disk (Store::put_file), state.json last: it marks the checkpoint
  // complete. Temporary files of an interrupted atomic write are skipped.
  void upload_checkpoint(const std::string& model, const CheckpointRef& where,
                         const std::filesystem::path& dir);
  // Complete checkpoints, oldest first.
  std::vector<CheckpointRef> checkpoints(const std::string& model);
  std::optional<CheckpointRef> latest_checkpoint(const std::string& model);
  std::string read_checkpoint(const std::string& model, const CheckpointRef& where,
                              const std::string& file);
  nlohmann::json checkpoint_state(const std::string& model, const CheckpointRef& where);

  // Writes metrics/<model>/metrics_v<stamp>.json; returns its key.
  std::string write_metrics(const std::string& model, const std::string& stamp,
                            const nlohmann::json& metrics);

  static std::string version_prefix(const std::string& model, const std::string& version);

 private:
  storage::Store& store_;
};

// Checks a model or alias name: [A-Za-z0-9._-]+, not starting with '.' (core::Error kUsage).
void validate_name(const std::string& what, const std::string& name);

}  // namespace ddpipe::registry
