// ddpipe::train — two files of a checkpoint as bytes: the optimizer's archive (optimizer.pt) and
// the default CPU generator's state (rng.bin). Kept apart from TrainingState so that a fuzzer
// can read hostile bytes with them (tests/model/fuzz).
#pragma once

#include <torch/optim/optimizer.h>

#include <string>

namespace ddpipe::train {

// optimizer.pt: the optimizer's torch::serialize archive (a momentum buffer per parameter).
std::string optimizer_bytes(const torch::optim::Optimizer& opt);
// Loads what optimizer_bytes() wrote into `opt`. A file that is no such archive, or whose state
// does not fit the optimizer's parameters, throws core::Error(kData) naming `where`; the optimizer
// may then hold part of it.
void load_optimizer(torch::optim::Optimizer& opt, const std::string& bytes,
                    const std::string& where);

// rng.bin: the default CPU generator's state.
std::string rng_bytes();
// Sets the default CPU generator to what rng_bytes() wrote. Anything else (another size, a state
// the generator refuses) throws core::Error(kData) naming `where` and leaves the generator as is.
void load_rng(const std::string& bytes, const std::string& where);

}  // namespace ddpipe::train
