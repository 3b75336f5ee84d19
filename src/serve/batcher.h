// ddpipe::serve — dynamic batching: inputs from concurrent requests run through the network
// together, up to max_batch inputs or once the oldest has waited max_delay_ms.
//
// One thread runs the forward passes. A batch only holds inputs preprocessed for the same
// loaded model, so a version switch never mixes versions and never fails a queued request: it
// runs with the model it was submitted with. An input's result is bitwise the same as
// classifying it alone (eval::classify guarantees it; batcher_test.cpp checks).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "eval/inference.h"
#include "serve/model_host.h"

namespace ddpipe::serve {

struct BatcherOptions {
  int64_t max_batch = 32;     // inputs per forward pass (one larger request runs alone)
  double max_delay_ms = 2.0;  // how long the oldest input waits for company
  int64_t max_queue = 1024;   // inputs waiting, beyond which submit() refuses
};

class Batcher {
 public:
  using Result = std::vector<eval::Prediction>;

  // `on_batch` (may be empty) is called with the size of every forward pass, on the batch thread.
  explicit Batcher(BatcherOptions options, std::function<void(int64_t)> on_batch = {});
  ~Batcher();  // stop()

  // Queues `n` inputs (n × C×H×W floats preprocessed for `model`); the future yields their n
  // predictions, or the exception inference threw. Throws core::Error(kRetryable) when
  // max_queue inputs are waiting or after stop(), kUsage when `inputs` has the wrong size.
  // Thread-safe.
  std::future<Result> submit(ModelPtr model, std::vector<float> inputs, int64_t n);

  int64_t queue_depth() const;  // inputs waiting
  // From now on batches start without waiting for max_delay_ms (draining). Thread-safe.
  void hurry();
  // Runs everything already queued, then ends the batch thread. Idempotent.
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  struct Job {
    ModelPtr model;
    std::vector<float> inputs;
    int64_t n = 0;
    std::promise<Result> done;
    Clock::time_point queued;
  };

  void loop();
  void run(const eval::LoadedModel& model, std::vector<Job>& jobs, int64_t n);

  const BatcherOptions options_;
  const std::function<void(int64_t)> on_batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  int64_t queued_ = 0;     // inputs in queue_
  bool hurry_ = false;     // no more waiting for company
  bool stopping_ = false;  // no more submissions; implies hurry_
  std::thread thread_;
};

}  // namespace ddpipe::serve
