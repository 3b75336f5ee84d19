// ddpipe: thin entry point. Everything else lives in the libraries under src/.
#include <cstring>
#include <functional>
#include <iostream>
#include <map>

#include "cli.h"
#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
  using namespace ddpipe;
  const std::map<std::string, std::function<int(const app::Args&)>> commands = {
      {"ingest", app::cmd_ingest}, {"train", app::cmd_train},   {"launch", app::cmd_launch},
      {"run", app::cmd_run},       {"eval", app::cmd_eval},     {"predict", app::cmd_predict},
      {"models", app::cmd_models}, {"config", app::cmd_config}, {"serve", app::cmd_serve},
      {"store", app::cmd_store},   {"k8s", app::cmd_k8s}};
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::cout << app::usage("");
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  auto it = commands.find(command);
  if (it == commands.end()) {
    std::cerr << "ddpipe: unknown command '" << command << "'\n\n" << app::usage("");
    return 2;
  }
  try {
    app::Args args = app::parse_args(argc, argv, 2);
    args.command = command;
    if (args.help) {
      std::cout << app::usage(command);
      return 0;
    }
    return it->second(args);
  } catch (const core::Error& e) {
    core::log::error(command, e.what(), {{"error_kind", core::kind_name(e.kind())}});
    core::record_error_file(e.what(), e.kind());
    return core::exit_code(e.kind());
  } catch (const std::exception& e) {
    core::log::error(command, std::string("internal error: ") + e.what());
    core::record_error_file(std::string("internal error: ") + e.what(), core::ErrorKind::kInternal);
    return 1;
  }
}
