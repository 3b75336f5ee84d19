// ddpipe::train — uploads to the store that do not stop training when the store is away.
//
// Uploads run in order on one background thread. A failed upload is retried with back-off
// until it succeeds. Checkpoints are written to local disk first (`local_dir/<id>/`) and
// uploaded from there, so a crash loses nothing that was written and a queue of pending uploads
// holds no checkpoint bytes in memory; a local checkpoint is removed once a newer one is in the
// store. Training only fails (core::Error kRetryable, from
// check() or flush()) when the store has been failing for longer than `grace_s`.
// save()/submit()/check()/flush() are called from the training thread.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry/registry.h"

namespace ddpipe::train {

class Checkpointer {
 public:
  // Told of every upload attempt on the upload thread (`what`, seconds, whether it succeeded):
  // the rank's metrics.
  using UploadObserver = std::function<void(const std::string& what, double seconds, bool ok)>;

  Checkpointer(registry::Registry& registry, std::string model, std::filesystem::path local_dir,
               double grace_s, UploadObserver observer = nullptr);
  ~Checkpointer();

  // A checkpoint file: its name and a function that serialises it. Files are produced, written
  // and released one at a time, so at most one file's bytes are in memory.
  using FileWriter = std::pair<std::string, std::function<std::string()>>;

  // Writes the checkpoint to local disk now and queues its upload.
  void save(const registry::CheckpointRef& where, const std::vector<FileWriter>& files,
            const nlohmann::json& state);
  // Queues any other upload (metrics, the final version); `what` names it in logs.
  void submit(const std::string& what, std::function<void()> upload);
  // Throws if uploads have been failing for longer than the grace period.
  void check();
  // Waits for every queued upload; throws once the grace period is exceeded.
  void flush();
  // Waits at most `seconds` for every queued upload; false when some are still pending (their
  // files stay on local disk). Never throws.
  bool flush_within(double seconds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Rank 0 before it resumes: uploads the complete checkpoints (state.json written) that an
// earlier process of run `run_id` left in `local_dir` and the store lacks — a job preempted or
// crashed while the store was away — oldest first, so that the run resumes from the newest.
// Returns how many it uploaded; a store failure is logged, and the local copies stay.
int64_t upload_local_checkpoints(registry::Registry& registry, const std::string& model,
                                 const std::filesystem::path& local_dir, const std::string& run_id);

}  // namespace ddpipe::train
