// The ddpipe command line: one shared argument parser and the subcommands.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/config.h"

namespace ddpipe::app {

// Parsed arguments common to every subcommand: --config, --set and the flags that are
// shorthands for config keys (each flag maps to exactly one key, see kFlagKeys in cli.cpp).
struct Args {
  std::string command;
  std::string config_path;
  std::vector<std::string> overrides;          // "key=value", in command-line order
  std::map<std::string, std::string> options;  // subcommand options (--model, --version, …)
  std::vector<std::string> positional;
  bool help = false;
};

// Throws core::Error(kUsage) for unknown flags or missing values.
Args parse_args(int argc, char** argv, int first);
core::Config load(const Args& args);
// The argv that re-runs this binary with the same config (for launched ranks).
std::vector<std::string> rank_argv(const Args& args, const std::vector<std::string>& extra_sets);

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
int cmd_k8s(const Args& args);

// Usage text of a subcommand ("" = the overview).
std::string usage(const std::string& command);

}  // namespace ddpipe::app
