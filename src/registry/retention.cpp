// Deleting versions and checkpoints without ever deleting what an alias, model_latest or a
// restart needs.
#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "registry/registry.h"

namespace ddpipe::registry {
namespace {

// Removes every object under `prefix`, `first` (the completion marker) before the others, so
// that the version or checkpoint is invisible from the first delete on.
void remove_prefix(storage::Store& store, const std::string& prefix, const std::string& first) {
  store.remove(prefix + first);
  for (const auto& o : store.list(prefix)) store.remove(o.key);
}

}  // namespace

void Registry::remove_checkpoint(const std::string& model, const CheckpointRef& where) {
  remove_prefix(store_, checkpoint_prefix(model, where), "state.json");
}

Removal Registry::remove_version(const std::string& model, const std::string& version) {
  validate_name("model name", model);
  const std::string prefix = version_prefix(model, version);
  if (version.rfind("model_v", 0) != 0 || !store_.exists(prefix + "manifest.json")) {
    core::fail_not_found("model " + model + " has no version '" + version +
                         "' (see `ddpipe models list`)");
  }
  std::string holders;
  for (const auto& [alias, target] : aliases(model)) {
    if (target == version) holders += (holders.empty() ? "" : ", ") + alias;
  }
  if (!holders.empty()) {
    core::fail_usage("refusing to remove " + version + " of model " + model +
                     ": it is the target of " + holders +
                     " (move them first: `ddpipe models promote` or `ddpipe models rollback`)");
  }
  remove_prefix(store_, prefix, "manifest.json");
  store_.remove(metrics_key(model, version));
  store_.remove(steps_key(model, version));
  return {"version " + version, prefix, "removed"};
}

std::vector<Removal> Registry::gc(const std::string& model, int64_t keep_versions,
                                  int64_t keep_checkpoints, bool dry_run) {
  validate_name("model name", model);
  std::vector<Removal> out;
  std::set<std::string> aliased;
  for (const auto& [alias, target] : aliases(model)) aliased.insert(target);
  const auto all = versions(model);  // oldest first
  std::set<std::string> published_runs;
  for (size_t i = 0; i < all.size(); ++i) {
    try {
      published_runs.insert(manifest_json(model, all[i]).value("run_id", ""));
    } catch (const core::Error&) {
    }
    const bool newest = static_cast<int64_t>(all.size() - i) <= keep_versions;
    if (newest || aliased.count(all[i])) continue;
    out.push_back({"version " + all[i], version_prefix(model, all[i]),
                   "older than the newest " + std::to_string(keep_versions) + ", not aliased"});
  }
  published_runs.erase("");
  // Checkpoints, newest first: the newest keep_checkpoints stay, and the newest of each run
  // that has not published (a restart resumes from it).
  const auto cps = checkpoints(model);
  std::set<std::string> runs_seen;
  int64_t kept = 0;
  for (auto it = cps.rbegin(); it != cps.rend(); ++it) {
    std::string run;
    try {
      run = checkpoint_state(model, *it).value("run_id", "");
    } catch (const core::Error&) {
    }
    const bool newest_of_run = runs_seen.insert(run).second;
    if (kept < keep_checkpoints || (newest_of_run && !published_runs.count(run))) {
      ++kept;
      continue;
    }
    out.push_back({"checkpoint " + it->id(), checkpoint_prefix(model, *it),
                   "beyond the newest " + std::to_string(keep_checkpoints) +
                       (run.empty() ? "" : " (run " + run + ")")});
  }
  if (dry_run) return out;
  for (const auto& r : out) {
    const bool version = r.what.rfind("version ", 0) == 0;
    remove_prefix(store_, r.prefix, version ? "manifest.json" : "state.json");
    if (!version) continue;
    store_.remove(metrics_key(model, r.what.substr(8)));
    store_.remove(steps_key(model, r.what.substr(8)));
  }
  return out;
}

std::vector<Removal> Registry::trim_checkpoints(const std::string& model, const std::string& run_id,
                                                int64_t keep) {
  if (keep <= 0 || run_id.empty()) return {};
  std::vector<Removal> out;
  int64_t kept = 0;
  const auto cps = checkpoints(model);
  for (auto it = cps.rbegin(); it != cps.rend(); ++it) {
    std::string run;
    try {
      run = checkpoint_state(model, *it).value("run_id", "");
    } catch (const core::Error&) {
      continue;  // unreadable: not provably this run's
    }
    if (run != run_id) continue;
    if (kept++ < keep) continue;
    remove_checkpoint(model, *it);
    out.push_back({"checkpoint " + it->id(), checkpoint_prefix(model, *it),
                   "run " + run_id + " keeps its newest " + std::to_string(keep)});
  }
  return out;
}

}  // namespace ddpipe::registry
