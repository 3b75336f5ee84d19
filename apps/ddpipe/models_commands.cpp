// `ddpipe models promote|rollback|history|diff|rm|gc` and `ddpipe run`'s promotion step: the
// model registry's commands (docs/registry.md). Argument wiring around registry::Registry.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "core/error.h"
#include "core/log.h"
#include "registry/compare.h"
#include "registry/registry.h"
#include "storage/store.h"

namespace ddpipe::app {
namespace {

using nlohmann::json;

// The positionals after the subcommand's name; kUsage unless there are `n`.
std::vector<std::string> operands(const Args& a, size_t n, const std::string& usage) {
  if (a.positional.size() != n + 1) core::fail_usage("usage: " + usage);
  return {a.positional.begin() + 1, a.positional.end()};
}

std::string required(const Args& a, const std::string& name, const std::string& usage) {
  if (!a.has(name) || a.option(name).empty())
    core::fail_usage("--" + name + " is required: " + usage);
  return a.option(name);
}

json move_json(const registry::AliasMove& m) {
  json j = m.to_json();
  j.erase("unix");
  return j;
}

void print_history_table(const std::string& alias, const std::vector<registry::AliasMove>& h) {
  std::cout << alias << (h.empty() ? "  (no recorded moves)" : "") << "\n";
  for (const auto& m : h) {
    std::string gate =
        m.gate.is_object() ? (m.gate.value("pass", false) ? "gate passed" : "gate refused") : "";
    std::printf("  #%-4lld %-20s %-26s -> %-26s %-18s %s%s%s\n", static_cast<long long>(m.seq),
                m.time.c_str(), m.from.empty() ? "(none)" : m.from.c_str(), m.to.c_str(),
                m.actor.c_str(), gate.c_str(), gate.empty() || m.reason.empty() ? "" : "; ",
                m.reason.c_str());
  }
}

int models_promote(const Args& a, registry::Registry& reg) {
  const std::string usage =
      "ddpipe models promote NAME REF --alias ALIAS [--reason TEXT] "
      "[--if-better-than ALIAS --metric M [--min-delta D]]";
  const auto ops = operands(a, 2, usage);
  const std::string alias = required(a, "alias", usage);
  std::optional<registry::Gate> gate;
  if (a.has("if-better-than")) {
    gate = registry::Gate{a.option("if-better-than"), a.option("metric", "test_acc"),
                          a.number_option("min-delta", 0.0)};
  } else if (a.has("metric") || a.has("min-delta")) {
    core::fail_usage("--metric and --min-delta need --if-better-than ALIAS: " + usage);
  }
  const registry::Promotion p = reg.promote(ops[0], alias, ops[1], a.option("reason"), gate);
  if (a.has("json")) {
    std::cout << json({{"promoted", p.promoted},
                       {"alias", alias},
                       {"version", p.version},
                       {"verdict", p.verdict ? p.verdict->to_json() : json()},
                       {"move", p.promoted ? move_json(p.move) : json()}})
                     .dump()
              << "\n";
  } else {
    if (p.verdict) std::cout << "gate: " << p.verdict->reason << "\n";
    if (p.promoted) {
      std::cout << alias << " -> " << p.version << " (was "
                << (p.move.from.empty() ? "(none)" : p.move.from) << "; history #" << p.move.seq
                << ")\n";
    } else {
      std::cout << alias << " stays at "
                << (p.verdict->baseline.empty() ? "(none)" : p.verdict->baseline)
                << ": promotion of " << p.version << " refused\n";
    }
  }
  return p.promoted ? 0 : kExitPromotionRefused;
}

int models_rollback(const Args& a, registry::Registry& reg) {
  const std::string usage = "ddpipe models rollback NAME --alias ALIAS [--reason TEXT]";
  const auto ops = operands(a, 1, usage);
  const std::string alias = required(a, "alias", usage);
  const registry::AliasMove m = reg.rollback_alias(ops[0], alias, a.option("reason"));
  if (a.has("json")) {
    std::cout << move_json(m).dump() << "\n";
  } else {
    std::cout << alias << " rolled back: " << m.from << " -> " << m.to << " (history #" << m.seq
              << ")\n";
  }
  return 0;
}

int models_history(const Args& a, registry::Registry& reg) {
  const auto ops = operands(a, 1, "ddpipe models history NAME [--alias ALIAS] [--json]");
  const std::string& model = ops[0];
  std::vector<std::string> aliases;
  if (a.has("alias")) {
    aliases.push_back(a.option("alias"));
    reg.resolve(model, aliases[0]);  // kNotFound naming the alias or model
  } else {
    aliases = reg.alias_names(model);
    if (aliases.empty()) reg.resolve(model, "latest");  // kNotFound naming the model
  }
  json out = json::object();
  for (const auto& alias : aliases) {
    const auto h = reg.alias_history(model, alias);
    if (a.has("json")) {
      json moves = json::array();
      for (const auto& m : h) moves.push_back(move_json(m));
      out[alias == "latest" ? "model_latest" : alias] = moves;
    } else {
      print_history_table(alias, h);
    }
  }
  if (a.has("json")) std::cout << out.dump(2) << "\n";
  return 0;
}

int models_diff(const Args& a, registry::Registry& reg) {
  const auto ops = operands(a, 3, "ddpipe models diff NAME REF1 REF2 [--json]");
  const registry::Manifest m1 = reg.manifest(ops[0], reg.resolve(ops[0], ops[1]));
  const registry::Manifest m2 = reg.manifest(ops[0], reg.resolve(ops[0], ops[2]));
  const json d = registry::diff(m1, m2);
  std::cout << (a.has("json") ? d.dump(2) + "\n" : registry::diff_text(d));
  return 0;
}

int models_rm(const Args& a, registry::Registry& reg) {
  const auto ops = operands(a, 2, "ddpipe models rm NAME REF");
  const registry::Removal r = reg.remove_version(ops[0], reg.resolve(ops[0], ops[1]));
  std::cout << "removed " << r.what << " (" << r.prefix << ")\n";
  return 0;
}

int models_gc(const Args& a, registry::Registry& reg) {
  const auto ops = operands(
      a, 1, "ddpipe models gc NAME [--keep-versions N] [--keep-checkpoints K] [--dry-run]");
  const bool dry = a.has("dry-run");
  reg.resolve(ops[0], "latest");  // kNotFound for an unknown model
  const auto removed = reg.gc(ops[0], a.count_option("keep-versions", 5),
                              a.count_option("keep-checkpoints", 2), dry);
  for (const auto& r : removed) {
    std::cout << (dry ? "would remove " : "removed ") << r.what << "  (" << r.why << ")\n";
  }
  std::cout << (dry ? "dry run: " : "") << removed.size() << " "
            << (dry ? "would be removed" : "removed") << "\n";
  return 0;
}

}  // namespace

std::optional<int> run_registry_subcommand(const std::string& sub, const Args& args,
                                           const core::Config& config) {
  using Handler = int (*)(const Args&, registry::Registry&);
  const std::map<std::string, Handler> handlers = {
      {"promote", models_promote}, {"rollback", models_rollback},
      {"history", models_history}, {"diff", models_diff},
      {"rm", models_rm},           {"gc", models_gc}};
  auto it = handlers.find(sub);
  if (it == handlers.end()) return std::nullopt;
  auto store = storage::open_store(config);
  registry::Registry reg(*store);
  return it->second(args, reg);
}

void promote_after_run(const core::Config& config, const std::string& version) {
  const auto& p = config.registry.promote;
  if (p.alias.empty()) return;
  auto store = storage::open_store(config);
  registry::Registry reg(*store);
  // A concurrent promotion of the alias won: judge again against its new version.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    try {
      const registry::Promotion r =
          reg.promote(config.name, p.alias, version, "ddpipe run (registry.promote)",
                      registry::Gate{p.alias, p.metric, p.min_delta});
      core::log::info(
          "run", r.promoted ? "promoted" : "promotion refused",
          {{"alias", p.alias}, {"version", version}, {"verdict", r.verdict->to_json()}});
      std::cout << "Promotion: " << r.verdict->reason << "\n"
                << (r.promoted
                        ? "  " + p.alias + " -> " + version + "\n"
                        : "  " + p.alias + " stays at " + r.verdict->baseline +
                              " (the run succeeded; the new version is only model_latest)\n");
      return;
    } catch (const registry::AliasConflict& e) {
      if (attempt == kAttempts) throw;
      core::log::warn("run", std::string(e.what()) + "; judging again");
    }
  }
}

}  // namespace ddpipe::app
