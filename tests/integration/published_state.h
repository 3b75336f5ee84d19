// The parameters and buffers of a model's latest published version in a local store, for
// comparing the weights of two runs exactly.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "model/model.h"
#include "registry/registry.h"
#include "storage/local_store.h"

namespace ddpipe::testing {

inline std::vector<torch::Tensor> published_state(const std::filesystem::path& store_dir,
                                                  const std::string& name,
                                                  const model::ModelSpec& spec) {
  storage::LocalStore store(store_dir);
  registry::Registry reg(store);
  auto net = model::make_model(spec);
  model::load_state(*net, reg.read(name, reg.resolve(name, "latest"), "model.pt"),
                    name + " model.pt");
  std::vector<torch::Tensor> out;
  for (auto& p : net->parameters()) out.push_back(p.detach().clone());
  for (auto& b : net->buffers()) out.push_back(b.detach().clone());
  return out;
}

}  // namespace ddpipe::testing
