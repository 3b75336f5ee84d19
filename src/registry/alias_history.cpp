// Aliases that move through a history, with only strongly consistent put/list/get/delete.
//
// A move builds on the alias's head (its pointer: version, seq, entry) and writes its entry at
// alias_history/<alias>/<seq+1:08d>-<head digest>-<unique>.json, then lists the entries of that
// group (sequence number and head digest: every mover that read the same head). It wins only if its
// entry is the only one there: of two movers, at least one sees the other's entry (each lists after
// its own put), so at most one can see itself alone. The winner writes the pointer, which names its
// entry; a loser deletes its entry and either fails (the alias has moved meanwhile: kRetryable) or,
// when nobody won, backs off and tries again. The history is the chain of entries from the
// pointer's entry back through `parent`: a loser's entry, even one left by a crashed process, is
// never on it. An entry older than kStaleSeconds at the sequence number a mover builds on is a
// mover that died before writing the pointer; it is removed so that it cannot block the alias
// forever. See docs/registry.md.
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "core/hash.h"
#include "registry/registry.h"

namespace ddpipe::registry {
namespace {

using nlohmann::json;

constexpr int kMoveAttempts = 8;
constexpr double kStaleSeconds = 300.0;

std::string canonical_alias(const std::string& alias) {
  return alias == "latest" ? "model_latest" : alias;
}

std::string pointer_key(const std::string& model, const std::string& alias) {
  const std::string a = canonical_alias(alias);
  if (a == "model_latest") return "models/" + model + "/model_latest";
  return "models/" + model + "/aliases/" + a;
}

std::string history_prefix(const std::string& model, const std::string& alias) {
  return "models/" + model + "/alias_history/" + canonical_alias(alias) + "/";
}

std::string seq_text(int64_t seq) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%08lld", static_cast<long long>(seq));
  return buf;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string unique_suffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          (static_cast<uint64_t>(::getpid()) << 32));
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::string current_actor() {
  if (const char* a = std::getenv("DDPIPE_ACTOR"); a && *a) return a;
  std::string user;
  if (const char* u = std::getenv("USER"); u && *u) user = u;
  if (user.empty()) {
    if (const passwd* pw = ::getpwuid(::geteuid())) user = pw->pw_name;
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return (user.empty() ? "unknown" : user) + "@" + host;
}

void backoff(int attempt) {
  static thread_local std::mt19937 rng(std::random_device{}());
  const int ms = std::uniform_int_distribution<int>(20, 80 << std::min(attempt, 4))(rng);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Removes the entries under `seq_prefix` of movers that died between their put and their
// pointer write (older than kStaleSeconds by their own clock).
void remove_stale_entries(storage::Store& store, const std::string& seq_prefix) {
  for (const auto& o : store.list(seq_prefix)) {
    auto doc = store.try_get(o.key);
    double t = 0;
    try {
      t = doc ? json::parse(*doc).value("unix", 0.0) : 0.0;
    } catch (const json::exception&) {
    }
    if (doc && unix_now() - t > kStaleSeconds) store.remove(o.key);
  }
}

// The contention group of a move: the sequence number it builds on plus a digest of the
// pointer it read. Every mover that read the same head lands in the same group. A pointer
// without "seq" (written before histories existed, or rewritten by such a build) is seq 0; the
// digest keeps its movers apart from entries recorded on an earlier pointer at the same seq.
std::string group_of(const std::optional<json>& head, int64_t seq) {
  return seq_text(seq) + "-" + core::sha256_hex(head ? head->dump() : "").substr(0, 12) + "-";
}

}  // namespace

json AliasMove::to_json() const {
  return {{"seq", seq},   {"key", key},        {"parent", parent}, {"time", time},
          {"from", from}, {"to", to},          {"reason", reason}, {"actor", actor},
          {"gate", gate}, {"unix", unix_now()}};
}

AliasMove AliasMove::from_json(const json& doc) {
  AliasMove m;
  // A float seq (1e300) would convert to int64_t undefined; the readers skip a json error.
  if (doc.is_object() && doc.contains("seq") && !doc["seq"].is_number_integer()) {
    throw json::type_error::create(302, "seq must be an integer", &doc["seq"]);
  }
  m.seq = doc.value("seq", int64_t{0});
  m.key = doc.value("key", "");
  m.parent = doc.value("parent", "");
  m.time = doc.value("time", "");
  m.from = doc.value("from", "");
  m.to = doc.value("to", "");
  m.reason = doc.value("reason", "");
  m.actor = doc.value("actor", "");
  m.gate = doc.contains("gate") ? doc["gate"] : json();
  return m;
}

std::optional<json> Registry::alias_pointer(const std::string& model, const std::string& alias) {
  const std::string key = pointer_key(model, alias);
  auto bytes = store_.try_get(key);
  if (!bytes) return std::nullopt;
  try {
    json p = json::parse(*bytes);
    // seq is read as an integer and incremented, entry as a string, when the alias moves.
    const bool seq_ok =
        !p.contains("seq") || (p["seq"].is_number_integer() && p["seq"].get<int64_t>() >= 0 &&
                               p["seq"].get<int64_t>() < INT64_MAX);
    const bool entry_ok = !p.contains("entry") || p["entry"].is_string();
    if (p.is_object() && p.contains("version") && p["version"].is_string() && seq_ok && entry_ok) {
      pointed_version(key, p["version"].get<std::string>());
      return p;
    }
  } catch (const json::exception&) {
  }
  core::fail_storage("alias " + key + " is corrupt (expected {\"version\": ...})");
}

AliasMove Registry::move_alias(const std::string& model, const std::string& alias,
                               const std::string& version, AliasMove move,
                               const std::optional<std::string>& expected_from) {
  validate_name("model name", model);
  validate_name("alias", alias);
  validate_name("version", version);
  if (version.rfind("model_v", 0) != 0 ||
      !store_.exists(version_prefix(model, version) + "manifest.json")) {
    core::fail_not_found("model " + model + " has no complete version '" + version +
                         "' (an alias only points at a version whose manifest.json exists)");
  }
  const std::string prefix = history_prefix(model, alias);
  for (int attempt = 0; attempt < kMoveAttempts; ++attempt) {
    const std::optional<json> head = alias_pointer(model, alias);
    const std::string head_version = head ? (*head)["version"].get<std::string>() : "";
    if (expected_from && head_version != *expected_from) {
      throw AliasConflict("alias " + alias + " of model " + model + " moved to " +
                          (head_version.empty() ? "(nothing)" : head_version) +
                          " while this move expected it at " +
                          (expected_from->empty() ? "(nothing)" : *expected_from) +
                          " (a concurrent promotion won); run the command again");
    }
    move.seq = (head ? head->value("seq", int64_t{0}) : 0) + 1;
    move.parent = head ? head->value("entry", "") : "";
    move.from = head_version;
    move.to = version;
    move.time = core::iso_timestamp();
    move.actor = current_actor();
    const std::string seq_prefix = prefix + group_of(head, move.seq);
    move.key = seq_prefix + unique_suffix() + ".json";
    remove_stale_entries(store_, seq_prefix);
    store_.put(move.key, move.to_json().dump(2));
    const auto contenders = store_.list(seq_prefix);
    if (contenders.size() == 1 && contenders[0].key == move.key && store_.exists(move.key)) {
      json pointer = {
          {"version", version}, {"updated", move.time}, {"seq", move.seq}, {"entry", move.key}};
      store_.put(pointer_key(model, alias), pointer.dump());
      return move;
    }
    store_.remove(move.key);
    const std::optional<json> now = alias_pointer(model, alias);
    if (now && now->value("seq", int64_t{0}) >= move.seq) {
      throw AliasConflict("alias " + alias + " of model " + model + " was moved concurrently (to " +
                          (*now)["version"].get<std::string>() + "); this move to " + version +
                          " was not recorded: run the command again");
    }
    backoff(attempt);
  }
  throw AliasConflict("alias " + alias + " of model " + model +
                      " is busy: " + std::to_string(kMoveAttempts) +
                      " attempts to move it met concurrent moves; run the command again");
}

std::vector<AliasMove> Registry::alias_history(const std::string& model, const std::string& alias) {
  validate_name("model name", model);
  validate_name("alias", alias);
  const std::optional<json> head = alias_pointer(model, alias);
  if (!head) return {};
  std::map<std::string, AliasMove> entries;
  for (const auto& o : store_.list(history_prefix(model, alias))) {
    auto bytes = store_.try_get(o.key);
    if (!bytes) continue;
    try {
      AliasMove m = AliasMove::from_json(json::parse(*bytes));
      m.key = o.key;
      entries[o.key] = m;
    } catch (const json::exception&) {
      // A damaged entry cannot be on the chain; it is skipped.
    }
  }
  std::vector<AliasMove> chain;
  std::set<std::string> seen;
  for (std::string key = head->value("entry", ""); !key.empty() && !seen.count(key);) {
    seen.insert(key);
    auto it = entries.find(key);
    if (it == entries.end()) break;  // removed by hand: the history starts after it
    chain.push_back(it->second);
    key = it->second.parent;
  }
  return {chain.rbegin(), chain.rend()};
}

std::vector<std::string> Registry::alias_names(const std::string& model) {
  std::vector<std::string> out;
  if (store_.exists(pointer_key(model, "model_latest"))) out.push_back("model_latest");
  const std::string prefix = "models/" + model + "/aliases/";
  for (const auto& o : store_.list(prefix)) out.push_back(o.key.substr(prefix.size()));
  return out;
}

AliasMove Registry::rollback_alias(const std::string& model, const std::string& alias,
                                   const std::string& reason) {
  const auto history = alias_history(model, alias);
  if (history.empty() || history.back().from.empty()) {
    core::fail_not_found("alias " + alias + " of model " + model +
                         " has no previous target to roll back to (see `ddpipe models history " +
                         model + " --alias " + alias + "`)");
  }
  const AliasMove& last = history.back();
  AliasMove move;
  move.reason = "rollback of #" + std::to_string(last.seq) + (reason.empty() ? "" : ": " + reason);
  return move_alias(model, alias, last.from, move, last.to);
}

Promotion Registry::promote(const std::string& model, const std::string& alias,
                            const std::string& ref, const std::string& reason,
                            const std::optional<Gate>& gate) {
  validate_name("alias", alias);
  Promotion p;
  p.version = resolve(model, ref);
  const std::optional<json> head = alias_pointer(model, alias);
  const std::string current = head ? (*head)["version"].get<std::string>() : "";
  AliasMove move;
  move.reason = reason;
  if (gate) {
    validate_name("alias", gate->baseline_alias);
    std::optional<std::pair<std::string, Manifest>> baseline;
    const std::string base =
        gate->baseline_alias == alias
            ? current
            : (alias_pointer(model, gate->baseline_alias) ? resolve(model, gate->baseline_alias)
                                                          : std::string());
    if (!base.empty()) baseline = std::make_pair(base, manifest(model, base));
    p.verdict = judge(*gate, p.version, manifest(model, p.version), baseline);
    if (!p.verdict->pass) return p;
    move.gate = p.verdict->to_json();
  }
  p.move = move_alias(model, alias, p.version, move, current);
  p.promoted = true;
  return p;
}

}  // namespace ddpipe::registry
