// ddpipe::train — starting a run from weights trained elsewhere (model.init_from), e.g. a
// torchvision state dict saved by Python with torch.save(model.state_dict(), path).
#pragma once

#include <string>

#include "core/config.h"
#include "model/model.h"
#include "storage/store.h"

namespace ddpipe::train {

// The bytes of config.model.init_from: a local file if one exists at that path (~ expanded),
// else the object of that key in `store`. Throws core::Error(kNotFound) when it is neither.
std::string read_init_weights(const core::Config& config, storage::Store& store);

// Copies the state dict of config.model.init_from (.pth or .safetensors, by content) into `net`,
// leaving the names under config.model.init_skip as they are; does nothing when init_from is
// empty. Checks every name and shape before copying anything: throws core::Error(kData) naming
// the file and every missing, unexpected or mis-shaped tensor. Called on a fresh model (after
// seeding, before DataParallel broadcasts rank 0's weights), never when resuming.
void init_from_state_dict(model::Classifier& net, const core::Config& config,
                          storage::Store& store);

}  // namespace ddpipe::train
