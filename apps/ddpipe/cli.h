// The ddpipe command line: every subcommand, flag and help text is declared once, in cli.cpp,
// with CLI11; the subcommands themselves are in commands.cpp.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

namespace ddpipe::app {

// What the command line said, for a subcommand: its config (--config, --set and the flags that
// are shorthands for one config key each, in command-line order) and its own options.
struct Args {
  std::string command;                         // "run", "models", …
  std::string config_path;                     // --config / -c
  std::vector<std::string> overrides;          // "key=value", in command-line order
  std::map<std::string, std::string> options;  // given subcommand options ("model", "top-k", …)
  std::vector<std::string> positional;         // a nested subcommand's name first ("show", …)

  bool has(const std::string& name) const { return options.count(name) > 0; }
  // The option's value, or `def` when it was not given.
  std::string option(const std::string& name, const std::string& def = "") const;
  // A number >= 0 (--min-delta) or a whole number >= 0 (--top-k, --workers); `def` when absent,
  // core::Error(kUsage) naming the option when it is something else.
  double number_option(const std::string& name, double def) const;
  int64_t count_option(const std::string& name, int64_t def) const;
};

// `ddpipe models promote --if-better-than`: the gate refused the candidate. Not an error kind
// (nothing failed), but its own exit code so that CI pipelines can branch on it.
constexpr int kExitPromotionRefused = 10;

// Parses argv, runs the subcommand and returns the process exit code: 0 on success, 2 for a
// command line CLI11 rejects, the core::Error kind's code for a failed command.
int run_cli(int argc, char** argv);

// The job's config: core::load_config with the choices the components above core own.
core::Config load(const Args& args);
// The argv that re-runs this binary's `train` with the same config (for launched ranks).
std::vector<std::string> rank_argv(const Args& args, const std::vector<std::string>& extra_sets);
// `ddpipe config docs`: docs/configuration.md, generated from the config schema and the flags.
std::string config_reference_markdown();

int cmd_ingest(const Args& args);
int cmd_train(const Args& args);
int cmd_launch(const Args& args);
int cmd_run(const Args& args);
int cmd_eval(const Args& args);
int cmd_predict(const Args& args);
int cmd_models(const Args& args);
int cmd_config(const Args& args);
int cmd_store(const Args& args);
int cmd_serve(const Args& args);
int cmd_ui(const Args& args);  // `ddpipe ui`: cmd_serve that prints the dashboard's URL
int cmd_k8s(const Args& args);
// observe_commands.cpp: run records, metrics as CSV/JSON, HTML reports.
int cmd_runs(const Args& args);
int cmd_metrics(const Args& args);
int cmd_report(const Args& args);

// The registry's `ddpipe models` subcommands (models_commands.cpp): promote, rollback, history,
// diff, rm, gc. Returns the exit code, or nullopt when `sub` is not one of them.
std::optional<int> run_registry_subcommand(const std::string& sub, const Args& args,
                                           const core::Config& config);
// `ddpipe run`'s last step: with registry.promote.alias set, the gate moves the alias to
// `version` only if it is better. Prints the verdict; never fails the run for a refusal. A
// concurrent promotion that wins makes it judge again against the new target (3 attempts).
void promote_after_run(const core::Config& config, const std::string& version);

}  // namespace ddpipe::app
