#include "train/checkpoint_files.h"

#include <torch/torch.h>

#include <cstring>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "model/model.h"
#include "model/zip_check.h"

namespace ddpipe::train {

std::string optimizer_bytes(const torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  size_t bytes = 0;  // one momentum buffer per parameter
  for (const auto& group : opt.param_groups()) {
    for (const auto& p : group.params()) bytes += p.nbytes();
  }
  return model::archive_bytes(archive, bytes);
}

void load_optimizer(torch::optim::Optimizer& opt, const std::string& bytes,
                    const std::string& where) {
  model::check_torch_zip(bytes, where);
  try {
    torch::serialize::InputArchive archive;
    std::istringstream in(bytes);
    archive.load_from(in);
    opt.load(archive);
  } catch (...) {
    model::rethrow_as_data_error(where + ": not an optimizer state this run can use: ");
  }
}

std::string rng_bytes() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  auto t = gen.get_state();
  return std::string(static_cast<const char*>(t.data_ptr()), t.numel());
}

void load_rng(const std::string& bytes, const std::string& where) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  const size_t expected = static_cast<size_t>(gen.get_state().numel());
  if (bytes.size() != expected) {
    core::fail_data(where + ": not a random generator state (" + std::to_string(bytes.size()) +
                    " bytes, expected " + std::to_string(expected) + ")");
  }
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  try {
    gen.set_state(t);
  } catch (...) {
    model::rethrow_as_data_error(where + ": not a random generator state: ");
  }
}

}  // namespace ddpipe::train
