// ddpipe::train — uploads to the store that do not stop training when the store is away.
//
// Uploads run in order on one background thread. A failed upload is retried with back-off
// until it succeeds; checkpoints are kept on local disk meanwhile (`local_dir/<id>/`), so a
// crash loses nothing that was written there. Training only fails (core::Error kRetryable, from
// check() or flush()) when the store has been failing for longer than `grace_s`.
// save()/submit()/check()/flush() are called from the training thread.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "registry/registry.h"

namespace ddpipe::train {

class Checkpointer {
 public:
  Checkpointer(registry::Registry& registry, std::string model, std::filesystem::path local_dir,
               double grace_s);
  ~Checkpointer();

  // Writes the checkpoint to local disk now and queues its upload.
  void save(const registry::CheckpointRef& where, registry::Files files, nlohmann::json state);
  // Queues any other upload (metrics, the final version); `what` names it in logs.
  void submit(const std::string& what, std::function<void()> upload);
  // Throws if uploads have been failing for longer than the grace period.
  void check();
  // Waits for every queued upload; throws once the grace period is exceeded.
  void flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddpipe::train
