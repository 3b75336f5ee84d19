// ddpipe::serve — the model version being served, and the watch that swaps in a new one when
// its alias (model_latest or a promoted alias) moves.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "eval/inference.h"
#include "storage/store.h"

namespace ddpipe::serve {

using ModelPtr = std::shared_ptr<const eval::LoadedModel>;

struct ModelStatus {
  bool ready = false;
  std::string version;  // the version being served, "" when none
  std::string error;    // the last failure to resolve or load, "" after a success
  int64_t loads = 0, load_failures = 0;
};

class ModelHost {
 public:
  // Serves `model` at `ref` (latest, an alias or model_v<stamp>) from `store`, which must
  // outlive the host. Nothing is loaded before refresh() or watch().
  ModelHost(storage::Store& store, std::string model, std::string ref);
  ~ModelHost();

  // Resolves `ref` and, if it names another version than the one served, loads that version
  // and swaps it in; requests holding the previous one finish with it. Returns true when a new
  // version was swapped in. Never throws: a failure is logged once and kept in status().error,
  // and a version that failed to load is not retried until the alias moves. Thread-safe.
  bool refresh();
  // Starts a thread that calls refresh() now and then every `poll_s` seconds (0: only now).
  void watch(double poll_s);
  // Stops the watch thread (waits for a load in progress). Idempotent.
  void stop();

  // The version being served, or null. Thread-safe; the pointer stays valid while held.
  ModelPtr current() const;
  ModelStatus status() const;
  const std::string& name() const { return model_; }

 private:
  storage::Store& store_;
  const std::string model_, ref_;

  mutable std::mutex mu_;  // guards the fields below
  ModelPtr current_;
  std::string error_, failed_version_;
  int64_t loads_ = 0, load_failures_ = 0;

  std::mutex refresh_mu_;  // one refresh at a time
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ddpipe::serve
