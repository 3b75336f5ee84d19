// ddpipe::telemetry — progress events: the pod-log heartbeat of a training rank (rank 0).
//
// Without a terminal, one JSON line every `every_steps` steps or `every_s` seconds, whichever
// comes first, with the figures of the window since the previous event:
//   {"event":"progress","epoch":3,"epochs":8,"step":250,"steps":469,"global_step":1188,
//    "loss":0.31,"acc":0.89,"lr":0.05,"images_per_second":2713,"data_wait_share":0.02,
//    "comm_exposed_share":0.11,"eta_epoch_s":80.7,"eta_job_s":1985,"elapsed_s":421.5}
// On a terminal core::ProgressBar shows the epoch's figures so far instead (img/s, loss, acc,
// ETA of the epoch and the job) and no event is logged; the events are returned either way (the
// trainer keeps them as the run's step history).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

namespace ddpipe::core {
class ProgressBar;
}

namespace ddpipe::telemetry {

struct ProgressOptions {
  int64_t every_steps = 50;  // an event after this many steps; 0: no step trigger
  double every_s = 30;       // an event after this many seconds; 0: no time trigger (both 0: none)
  int64_t epochs = 1;        // of the job, for "epochs" and eta_job_s
  int64_t world_size = 1;    // images_per_second is the job's: this rank's images × world_size
  // Draw core::ProgressBar instead of logging events, when the log writes text lines
  // (core::log::json() false) to a terminal. False on ranks other than 0 and in tests.
  bool draw_bar = true;
};

// One training step on this rank, as the trainer saw it.
struct StepSample {
  int64_t step = 0;           // steps done in this epoch after this one (1-based: the first is 1)
  double images = 0;          // images of this step on this rank
  double loss_sum = 0;        // of this step: sum of the per-sample losses
  double correct = 0;         // of this step: correct predictions
  double count = 0;           // of this step: samples
  double lr = 0;              // learning rate the step used
  double data_wait_s = 0;     // cumulative on this rank since the epoch began
  double comm_exposed_s = 0;  // cumulative on this rank since the epoch began
  double now = 0;             // core::monotonic_seconds() after the step
};

// Turns steps into progress events. Every epoch: begin_epoch, step() after each step,
// end_epoch. Times come from the callers' `now` only (tests pass synthetic ones).
// An event, every figure over the window since the previous event (or the epoch's start):
//   epoch (1-based), epochs, step, steps, global_step (epoch × steps + step: every epoch has the
//   same steps), loss and acc (window means per sample), lr (the last step's),
//   images_per_second (window images × world_size / window seconds), data_wait_share and
//   comm_exposed_share (of the window's seconds), eta_epoch_s (remaining steps × this epoch's
//   mean step time so far), eta_job_s (eta_epoch_s + the remaining epochs, each as long as the
//   last whole epoch this meter saw from begin_epoch to the next begin_epoch — evaluation
//   included — or, before one ends, steps × the mean step time), elapsed_s (since the first
//   begin_epoch).
// Not thread-safe: the training thread owns it.
class ProgressMeter {
 public:
  // Throws core::Error (kUsage) when every_steps or every_s is negative or epochs or world_size
  // is below 1.
  explicit ProgressMeter(ProgressOptions options);
  ~ProgressMeter();
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  // Starts epoch `epoch` (0-based) of `steps` steps at step `first_step` (> 0 after resuming
  // mid-epoch: the window and the step-time mean start there). Finishes an unfinished epoch's
  // bar (without an event).
  void begin_epoch(int64_t epoch, int64_t steps, int64_t first_step, double now);

  // Adds a step. Returns the event when one is due (and logs it with
  // core::log::info("train", "progress", event) unless the bar is drawn), else nullopt. When
  // no event is due: arithmetic only, no allocation, no clock call — but for the bar's redraw,
  // at most 10 times a second.
  // Throws core::Error (kInternal) before begin_epoch.
  std::optional<nlohmann::json> step(const StepSample& sample);

  // Ends the epoch at `now` (before evaluation): returns (and logs) the last window's event if
  // it has steps and a trigger is on, else nullopt; finishes the bar.
  std::optional<nlohmann::json> end_epoch(double now);

  // Whether the bar is drawn (and events are not logged).
  bool draws_bar() const { return draw_bar_; }

 private:
  struct Sums {  // of steps: per-sample loss, correct, samples, images
    double loss_sum = 0, correct = 0, count = 0, images = 0;
    void add(const StepSample& s);
  };
  nlohmann::json event(double now) const;
  std::optional<nlohmann::json> emit(double now);
  void draw(double now);
  double mean_step_seconds(double now) const;
  double eta_epoch(double now) const;
  double eta_job(double now) const;

  const ProgressOptions options_;
  const bool draw_bar_;
  std::unique_ptr<core::ProgressBar> bar_;
  bool started_ = false, in_epoch_ = false;
  double t_start_ = 0;        // first begin_epoch
  double t_epoch_ = 0;        // this epoch's begin_epoch
  double last_epoch_s_ = 0;   // the last whole epoch, begin to begin (0: none yet)
  bool epoch_whole_ = false;  // this epoch started at step 0 and has ended
  int64_t epoch_ = 0, steps_ = 0, first_step_ = 0;
  StepSample last_;  // the latest step
  Sums epoch_sums_, window_;
  int64_t window_step0_ = 0;  // step count when the window began
  double window_t0_ = 0, window_wait0_ = 0, window_comm0_ = 0;
  double last_draw_ = -1e300;  // `now` of the last bar redraw
};

}  // namespace ddpipe::telemetry
