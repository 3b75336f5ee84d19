// ddpipe::telemetry — the Prometheus /metrics endpoint of a training rank (prometheus-cpp, which
// stays private to rank_metrics.cpp).
//
// Families, each with the labels model, rank and local_rank:
//   ddpipe_train_step_seconds                 histogram  one training step (1 ms – 60 s buckets)
//   ddpipe_train_steps_total                  counter    training steps done
//   ddpipe_train_images_total                 counter    images trained on by this rank
//   ddpipe_train_images_per_second            gauge      the job's rate at the last progress event
//   ddpipe_train_loss                         gauge      training loss at the last progress event
//   ddpipe_train_epoch                        gauge      current epoch (1-based)
//   ddpipe_train_step                         gauge      steps done in the current epoch
//   ddpipe_train_epoch_steps                  gauge      steps of an epoch
//   ddpipe_train_data_wait_seconds_total      counter    time waiting for the next batch
//   ddpipe_train_comm_exposed_seconds_total   counter    allreduce time not hidden by backward
//   ddpipe_train_comm_seconds_total           counter    allreduce time in all
//   ddpipe_train_checkpoint_upload_seconds    histogram  checkpoint uploads, failed ones too
//   ddpipe_train_checkpoint_upload_failures_total  counter
//   ddpipe_train_restarts                     gauge      restarts of the job so far
//   ddpipe_process_resident_memory_bytes      gauge      /proc/self/statm, read at scrape time
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace ddpipe::telemetry {

struct RankLabels {
  std::string model;       // config `name`
  std::string rank;        // global rank
  std::string local_rank;  // rank on its node
};

// Serves GET /metrics for one rank on its own threads while training runs. Every method is
// thread-safe (the training thread and the checkpoint upload thread call it) and cheap: a few
// atomic updates, nothing when disabled. Values given as negative to counters are ignored.
class RankMetrics {
 public:
  // port 0: disabled, every method a no-op. Otherwise serves on bind_address:port (an IPv6
  // address may be given bare: "::"). Never throws for the server: when the port cannot be
  // bound it logs a warning naming the port and the config key `metrics.port` and stays
  // disabled — a training job does not fail for its metrics. Throws core::Error (kUsage) for a
  // port outside 0–65535.
  RankMetrics(int port, RankLabels labels, std::string bind_address = "0.0.0.0");
  ~RankMetrics();  // stops the server: up to 2 s (civetweb's poll interval)
  RankMetrics(const RankMetrics&) = delete;
  RankMetrics& operator=(const RankMetrics&) = delete;

  bool serving() const { return impl_ != nullptr; }
  int port() const;  // the port served, 0 when not serving

  // One training step of `seconds` over `images` images: the histogram, steps and images.
  void observe_step(double seconds, double images);
  // The gauges of a progress event: epoch (1-based), step within it, steps of the epoch.
  void set_progress(int64_t epoch, int64_t step, int64_t steps, double loss,
                    double images_per_second);
  void add_data_wait(double seconds);
  // Allreduce time since the last call: `exposed_seconds` of it not overlapped with backward,
  // `total_seconds` in all.
  void add_comm(double exposed_seconds, double total_seconds);
  // One checkpoint upload (`ok` false: it failed after `seconds`).
  void observe_checkpoint_upload(double seconds, bool ok);
  void set_restarts(int64_t restarts);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddpipe::telemetry
