#include "registry/registry.h"

#include <algorithm>
#include <set>

#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"

namespace ddpipe::registry {
namespace {

constexpr const char* kVersionPrefix = "model_v";

std::string model_root(const std::string& model) { return "models/" + model + "/"; }

std::string alias_key(const std::string& model, const std::string& alias) {
  if (alias == "latest" || alias == "model_latest") return model_root(model) + "model_latest";
  return model_root(model) + "aliases/" + alias;
}

// Parses "<n>" or "<n>_step_<k>" (what follows "epoch_").
std::optional<CheckpointRef> parse_checkpoint_id(const std::string& rest) {
  CheckpointRef ref;
  size_t used = 0;
  try {
    ref.epoch = std::stoll(rest, &used);
    if (used != rest.size()) {
      if (rest.compare(used, 6, "_step_") != 0) return std::nullopt;
      std::string step = rest.substr(used + 6);
      ref.step = std::stoll(step, &used);
      if (used != step.size()) return std::nullopt;
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return ref;
}

}  // namespace

std::string pointed_version(const std::string& key, const std::string& version) {
  if (!storage::is_valid_name(version) || version.rfind(kVersionPrefix, 0) != 0) {
    core::fail_data("alias " + key + " names version '" + storage::printable(version) +
                    "', expected model_v<stamp> (letters, digits, '.', '_', '-'): the pointer is "
                    "corrupt or was edited; remove it (ddpipe store rm " +
                    key + ") and move the alias again");
  }
  return version;
}

std::string Registry::version_prefix(const std::string& model, const std::string& version) {
  return model_root(model) + version + "/";
}

std::string Registry::checkpoint_prefix(const std::string& model, const CheckpointRef& where) {
  return model_root(model) + "checkpoints/" + where.id() + "/";
}

namespace {
// "metrics/<model>/metrics_v<stamp>" of a version model_v<stamp> or of a stamp.
std::string metrics_base(const std::string& model, const std::string& version) {
  const std::string stamp = version.rfind(kVersionPrefix, 0) == 0 ? version.substr(7) : version;
  return "metrics/" + model + "/metrics_v" + stamp;
}
}  // namespace

std::string Registry::metrics_key(const std::string& model, const std::string& version) {
  return metrics_base(model, version) + ".json";
}

std::string Registry::steps_key(const std::string& model, const std::string& version) {
  return metrics_base(model, version) + ".steps.jsonl";
}

std::string Registry::publish(const std::string& model, const Files& files,
                              const Manifest& manifest, const std::string& stamp) {
  // The JSON overload sets model, version and created.
  return publish(model, files, manifest.to_json(), stamp);
}

std::string Registry::publish(const std::string& model, const Files& files, nlohmann::json manifest,
                              const std::string& stamp) {
  validate_name("model name", model);
  std::string base = kVersionPrefix + (stamp.empty() ? core::version_timestamp() : stamp);
  std::string version = base;
  for (int i = 2; store_.exists(version_prefix(model, version) + "manifest.json") ||
                  !store_.list(version_prefix(model, version)).empty();
       ++i) {
    version = base + "_" + std::to_string(i);
  }
  std::string prefix = version_prefix(model, version);
  for (const auto& [name, bytes] : files) store_.put(prefix + name, bytes);
  manifest["model"] = model;
  manifest["version"] = version;
  manifest["created"] = core::iso_timestamp();
  store_.put(prefix + "manifest.json", manifest.dump(2));
  set_alias(model, "latest", version);
  return version;
}

void Registry::set_alias(const std::string& model, const std::string& alias,
                         const std::string& version) {
  // Concurrent publishes each move model_latest: a move that meets another is tried again.
  constexpr int kAttempts = 20;
  for (int attempt = 1;; ++attempt) {
    try {
      move_alias(model, alias, version, AliasMove{});
      return;
    } catch (const AliasConflict&) {
      if (attempt == kAttempts) throw;
    }
  }
}

std::string Registry::resolve(const std::string& model, const std::string& ref) {
  validate_name("model name", model);
  validate_name("version or alias", ref);
  if (ref.rfind(kVersionPrefix, 0) == 0) {
    if (!store_.exists(version_prefix(model, ref) + "manifest.json")) {
      core::fail_not_found("model " + model + " has no version '" + ref +
                           "' (see `ddpipe models list`)");
    }
    return ref;
  }
  auto pointer = store_.try_get(alias_key(model, ref));
  if (!pointer) {
    if (versions(model).empty()) {
      core::fail_not_found("no model named '" + model + "' in store " + store_.url() +
                           " (train one with `ddpipe run`)");
    }
    core::fail_not_found("model " + model + " has no alias '" + ref + "'");
  }
  std::string version;
  try {
    version = nlohmann::json::parse(*pointer).at("version").get<std::string>();
  } catch (const nlohmann::json::exception&) {
    core::fail_storage("alias " + alias_key(model, ref) +
                       " is corrupt (expected {\"version\": ...})");
  }
  return pointed_version(alias_key(model, ref), version);
}

std::map<std::string, std::string> Registry::aliases(const std::string& model) {
  std::map<std::string, std::string> out;
  if (store_.exists(alias_key(model, "latest"))) out["model_latest"] = resolve(model, "latest");
  std::string prefix = model_root(model) + "aliases/";
  for (auto& o : store_.list(prefix)) {
    std::string alias = o.key.substr(prefix.size());
    out[alias] = resolve(model, alias);
  }
  return out;
}

std::vector<std::string> Registry::models() {
  std::set<std::string> names;
  for (auto& o : store_.list("models/")) {
    std::string rest = o.key.substr(7);
    size_t slash = rest.find('/');
    if (slash == std::string::npos) continue;
    std::string tail = rest.substr(slash + 1);
    if (tail.rfind(kVersionPrefix, 0) == 0 && tail.size() > 14 &&
        tail.compare(tail.size() - 14, 14, "/manifest.json") == 0) {
      names.insert(rest.substr(0, slash));
    }
  }
  return {names.begin(), names.end()};
}

std::vector<std::string> Registry::versions(const std::string& model) {
  validate_name("model name", model);
  std::vector<std::string> out;
  std::string root = model_root(model);
  for (auto& o : store_.list(root + kVersionPrefix)) {
    std::string rest = o.key.substr(root.size());
    size_t slash = rest.find('/');
    if (slash != std::string::npos && rest.substr(slash + 1) == "manifest.json") {
      out.push_back(rest.substr(0, slash));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json Registry::manifest_json(const std::string& model, const std::string& version) {
  validate_name("model name", model);
  validate_name("version", version);
  std::string key = version_prefix(model, version) + "manifest.json";
  auto bytes = store_.try_get(key);
  if (!bytes) core::fail_not_found("model " + model + " has no version '" + version + "'");
  try {
    return nlohmann::json::parse(*bytes);
  } catch (const nlohmann::json::exception& e) {
    core::fail_storage(key + " is not valid JSON: " + e.what());
  }
}

Manifest Registry::manifest(const std::string& model, const std::string& version) {
  return Manifest::from_json(manifest_json(model, version),
                             version_prefix(model, version) + "manifest.json");
}

std::string Registry::read(const std::string& model, const std::string& version,
                           const std::string& file) {
  validate_name("model name", model);
  validate_name("version", version);
  return store_.get(version_prefix(model, version) + file);
}

std::string CheckpointRef::id() const {
  std::string id = "epoch_" + std::to_string(epoch);
  return step > 0 ? id + "_step_" + std::to_string(step) : id;
}

void Registry::upload_checkpoint(const std::string& model, const CheckpointRef& where,
                                 const std::filesystem::path& dir) {
  validate_name("model name", model);
  const std::string prefix = checkpoint_prefix(model, where);
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    // Not state.json (last), nor what an interrupted atomic write left behind.
    if (e.is_regular_file() && name != "state.json" && name.rfind(core::kTempPrefix, 0) != 0) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) store_.put_file(prefix + f.filename().string(), f);
  store_.put_file(prefix + "state.json", dir / "state.json");  // last: marks complete
}

std::vector<CheckpointRef> Registry::checkpoints(const std::string& model) {
  validate_name("model name", model);
  std::vector<CheckpointRef> out;
  std::string root = model_root(model) + "checkpoints/epoch_";
  for (auto& o : store_.list(root)) {
    std::string rest = o.key.substr(root.size());
    size_t slash = rest.find('/');
    if (slash == std::string::npos || rest.substr(slash + 1) != "state.json") continue;
    if (auto ref = parse_checkpoint_id(rest.substr(0, slash))) out.push_back(*ref);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<CheckpointRef> Registry::latest_checkpoint(const std::string& model) {
  auto all = checkpoints(model);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::string Registry::read_checkpoint(const std::string& model, const CheckpointRef& where,
                                      const std::string& file) {
  return store_.get(checkpoint_prefix(model, where) + file);
}

nlohmann::json Registry::checkpoint_state(const std::string& model, const CheckpointRef& where) {
  std::string key = checkpoint_prefix(model, where) + "state.json";
  try {
    return nlohmann::json::parse(store_.get(key));
  } catch (const nlohmann::json::exception& e) {
    core::fail_storage(key + " is not valid JSON: " + e.what());
  }
}

std::string Registry::write_metrics(const std::string& model, const std::string& stamp,
                                    const nlohmann::json& metrics) {
  validate_name("model name", model);
  std::string key = metrics_key(model, kVersionPrefix + stamp);
  store_.put(key, metrics.dump(2));
  return key;
}

std::string Registry::write_steps(const std::string& model, const std::string& stamp,
                                  const std::vector<nlohmann::json>& rows) {
  validate_name("model name", model);
  std::string text;
  for (const auto& row : rows) text += row.dump() + "\n";
  std::string key = steps_key(model, kVersionPrefix + stamp);
  store_.put(key, text);
  return key;
}

std::vector<nlohmann::json> Registry::read_steps(const std::string& model,
                                                 const std::string& version) {
  validate_name("model name", model);
  validate_name("version", version);
  const std::string key = steps_key(model, version);
  std::vector<nlohmann::json> rows;
  const auto text = store_.try_get(key);
  if (!text) return rows;
  size_t start = 0, line = 1;
  for (size_t end; start < text->size(); start = end + 1, ++line) {
    end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    if (end == start) continue;
    try {
      rows.push_back(nlohmann::json::parse(text->substr(start, end - start)));
    } catch (const nlohmann::json::exception& e) {
      core::fail_storage(key + " line " + std::to_string(line) + " is not JSON: " + e.what());
    }
  }
  return rows;
}

std::optional<nlohmann::json> Registry::read_metrics(const std::string& model,
                                                     const std::string& version) {
  validate_name("model name", model);
  validate_name("version", version);
  const std::string key = metrics_key(model, version);
  const auto text = store_.try_get(key);
  if (!text) return std::nullopt;
  try {
    return nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception& e) {
    core::fail_storage(key + " is not valid JSON: " + e.what());
  }
}

}  // namespace ddpipe::registry
