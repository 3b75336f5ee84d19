// ddpipe::registry — model versions, aliases, checkpoints and metrics in the artifact store.
// Needs no libtorch: model files are opaque bytes here, so `ddpipe models list` is instant.
//
// Layout (the buckets users of the original MinIO setup know):
//   models/<model>/model_v<YYYYMMDD_HHMMSS>/{model.pt, manifest.json, …}   a version (model.pth,
//                                            model.safetensors: the same weights for Python)
//   models/<model>/model_latest                                         alias → newest version
//   models/<model>/aliases/<alias>                                      promoted aliases
//   models/<model>/alias_history/<alias>/<seq:08d>-<unique>.json        every move of an alias
//                                            (model_latest's under alias_history/model_latest/)
//   models/<model>/checkpoints/epoch_<n>/{model.pt, …, state.json}      after n epochs
//   models/<model>/checkpoints/epoch_<n>_step_<k>/…                     k steps into epoch n+1
//   metrics/<model>/metrics_v<YYYYMMDD_HHMMSS>.json                     a run's metrics
//   metrics/<model>/metrics_v<YYYYMMDD_HHMMSS>.steps.jsonl              its step history (one
//                                            JSON object per progress event)
// A version or checkpoint is complete once its manifest.json / state.json exists: those are
// written last, and an alias is only moved to a complete version.
// Errors: core::Error(kNotFound) for unknown models, versions, aliases; kUsage for bad names.
// Aliases move through a protocol that needs only strongly consistent put/list/get/delete
// (no conditional writes): see move_alias() and docs/registry.md.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "registry/compare.h"
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

// One move of an alias, as stored in its history (alias_history/<alias>/<key>).
struct AliasMove {
  int64_t seq = 0;     // 1 for the first recorded move
  std::string key;     // the store key of this entry
  std::string parent;  // the key of the entry it moved from ("" for the first)
  std::string time;    // ISO 8601, UTC
  std::string from;    // the version before ("" when the alias did not exist)
  std::string to;      // the version after
  std::string reason;
  std::string actor;    // $DDPIPE_ACTOR, else user@host
  nlohmann::json gate;  // the gate's verdict (GateVerdict::to_json), or null without a gate
  nlohmann::json to_json() const;
  static AliasMove from_json(const nlohmann::json& doc);
};

// A move of an alias lost to a concurrent move (core::Error kRetryable): nothing was recorded.
class AliasConflict : public core::Error {
 public:
  explicit AliasConflict(const std::string& message)
      : core::Error(core::ErrorKind::kRetryable, message) {}
};

// What promote() did: moved (with the entry recorded) or refused by the gate.
struct Promotion {
  bool promoted = false;
  std::string version;                 // the candidate, resolved
  std::optional<GateVerdict> verdict;  // with a gate
  AliasMove move;                      // when promoted
};

// A version deleted (or, in a dry run, to be deleted) by remove_version/gc/trim_checkpoints.
struct Removal {
  std::string what;    // "version model_v…" or "checkpoint epoch_…"
  std::string prefix;  // its store prefix
  std::string why;
};

class Registry {
 public:
  explicit Registry(storage::Store& store) : store_(store) {}

  // Writes `files` then manifest.json (`manifest` with model, version and created set) under a
  // new version and points model_latest at it. Returns the version ("model_v20261130_101500").
  // `stamp` names the version (model_v<stamp>, the stamp of the run's metrics); "" = now.
  std::string publish(const std::string& model, const Files& files, const Manifest& manifest,
                      const std::string& stamp = "");
  // The same with the manifest as a JSON document, stored as given (plus "model", "version",
  // "created") and not checked: for documents the typed Manifest cannot express — an older
  // schema, or a broken manifest in a test. Prefer the typed overload.
  std::string publish(const std::string& model, const Files& files, nlohmann::json manifest,
                      const std::string& stamp = "");

  // Points alias ("latest" means model_latest) at an existing complete version and records the
  // move in its history (move_alias with no reason; retried on a concurrent move).
  void set_alias(const std::string& model, const std::string& alias, const std::string& version);

  // --- Alias history and promotion (alias_history.cpp) -------------------------------------
  // Moves `alias` to the complete `version`, recording `move` (its reason and gate; seq, key,
  // parent, time, from, to and actor are set here), and returns the recorded entry. When
  // `expected_from` is set, the move only happens if the alias still points there (the version
  // a gate compared against): else AliasConflict. Of two moves racing on one alias (threads,
  // processes or machines; Registry objects on one thread-safe Store may be used concurrently)
  // exactly one can succeed; the other throws AliasConflict (kRetryable) naming the alias, and
  // its history entry is removed. kNotFound for an incomplete or unknown version.
  AliasMove move_alias(const std::string& model, const std::string& alias,
                       const std::string& version, AliasMove move,
                       const std::optional<std::string>& expected_from = std::nullopt);
  // The recorded moves of an alias, oldest first ("latest" for model_latest); empty when it
  // has none (an alias set before histories existed has none until it moves).
  std::vector<AliasMove> alias_history(const std::string& model, const std::string& alias);
  // The aliases that exist (have a pointer), model_latest first as "model_latest".
  std::vector<std::string> alias_names(const std::string& model);
  // `ddpipe models promote`: resolves `ref`, runs the gate if any (against the current version
  // of gate->baseline_alias) and moves `alias` when it passes. The move only happens if the
  // alias still points where it did when the gate ran: a concurrent promotion makes this one
  // fail with AliasConflict (kRetryable). A refusal is not an error (promoted = false).
  Promotion promote(const std::string& model, const std::string& alias, const std::string& ref,
                    const std::string& reason, const std::optional<Gate>& gate);
  // Moves `alias` back to the version it pointed at before its last move. kNotFound when it
  // has no previous target.
  AliasMove rollback_alias(const std::string& model, const std::string& alias,
                           const std::string& reason);

  // --- Retention (retention.cpp) -----------------------------------------------------------
  // Deletes a version (manifest first: it becomes invisible at once) and its metrics object.
  // core::Error(kUsage) naming the aliases when model_latest or an alias points at it.
  Removal remove_version(const std::string& model, const std::string& version);
  // Deletes all but the newest `keep_versions` versions and `keep_checkpoints` checkpoints;
  // never an aliased version, model_latest's target, nor the newest checkpoint of a run that
  // has not published a version. With `dry_run` nothing is deleted. Returns what is (or would
  // be) removed.
  std::vector<Removal> gc(const std::string& model, int64_t keep_versions, int64_t keep_checkpoints,
                          bool dry_run);
  // Deletes the checkpoints of run `run_id` but its newest `keep` (keep >= 1; 0 keeps all).
  std::vector<Removal> trim_checkpoints(const std::string& model, const std::string& run_id,
                                        int64_t keep);
  // Removes a checkpoint (state.json first).
  void remove_checkpoint(const std::string& model, const CheckpointRef& where);
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

  // Writes metrics/<model>/metrics_v<stamp>.steps.jsonl (`rows`, one JSON object a line, in
  // order); returns its key.
  std::string write_steps(const std::string& model, const std::string& stamp,
                          const std::vector<nlohmann::json>& rows);
  // The step history of a version (or of a stamp) as written; empty when it has none (a
  // version from before step histories). kStorage when a line is not JSON.
  std::vector<nlohmann::json> read_steps(const std::string& model, const std::string& version);
  // The metrics object of a version (or stamp); nullopt when it has none.
  std::optional<nlohmann::json> read_metrics(const std::string& model, const std::string& version);

  static std::string version_prefix(const std::string& model, const std::string& version);
  // models/<model>/checkpoints/<id>/: the folder of a checkpoint's files.
  static std::string checkpoint_prefix(const std::string& model, const CheckpointRef& where);
  // metrics/<model>/metrics_v<stamp>.json of a version model_v<stamp> (or of a stamp).
  static std::string metrics_key(const std::string& model, const std::string& version);
  // metrics/<model>/metrics_v<stamp>.steps.jsonl of a version model_v<stamp> (or of a stamp).
  static std::string steps_key(const std::string& model, const std::string& version);

 private:
  // The pointer object of an alias: {"version", "updated", "seq", "entry"}; nullopt if absent.
  std::optional<nlohmann::json> alias_pointer(const std::string& model, const std::string& alias);

  storage::Store& store_;
};

// Model, alias and version names follow storage's one rule for names (storage/store.h):
// 1-128 of [A-Za-z0-9._-], not starting with '.'; core::Error(kUsage) naming `what` otherwise.
using storage::validate_name;

// The version an alias pointer object (`key`) names, checked: a valid name starting with
// "model_v"; core::Error(kData) naming the key otherwise (an edited or hostile pointer, e.g.
// {"version": "../../etc"}, never reaches a key).
std::string pointed_version(const std::string& key, const std::string& version);

}  // namespace ddpipe::registry
