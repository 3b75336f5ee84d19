#include "train/init_from.h"

#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "model/export.h"

namespace ddpipe::train {

std::string read_init_weights(const core::Config& config, storage::Store& store) {
  const std::string& from = config.model.init_from;
  const std::filesystem::path local = core::expand_user(from);
  std::error_code ec;
  if (std::filesystem::is_regular_file(local, ec)) return core::read_file(local);
  if (store.exists(from)) return store.get(from);
  core::fail_not_found("model.init_from: '" + from + "' is neither a local file nor a key of " +
                       store.url() + " (expected a .pth or .safetensors state dict)");
}

void init_from_state_dict(model::Classifier& net, const core::Config& config,
                          storage::Store& store) {
  if (config.model.init_from.empty()) return;
  const std::string where = "model.init_from '" + config.model.init_from + "'";
  const model::StateDict state = model::read_state_dict(read_init_weights(config, store), where);
  model::load_state_dict(net, state, config.model.init_skip, where);
  std::string skipped;
  for (const auto& p : config.model.init_skip) skipped += (skipped.empty() ? "" : ",") + p;
  core::log::info("train", "initialised the model from a state dict",
                  {{"init_from", config.model.init_from},
                   {"tensors", static_cast<int64_t>(state.size())},
                   {"init_skip", skipped}});
}

}  // namespace ddpipe::train
