// ddpipe::train — what one rank tells the world while it trains (docs/telemetry.md): progress
// events in the log (rank 0), Prometheus /metrics (every rank, metrics.port + local rank), the
// run record in the store (rank 0, runs/<name>/<run_id>.json), the step history (rank 0) and
// the straggler of each epoch. The trainer calls it at fixed points; it never fails training:
// a port in use or a store away only costs a warning.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "dist/world.h"
#include "storage/store.h"

namespace ddpipe::dist {
class Communicator;
}
namespace ddpipe::runs {
class RunTracker;
}
namespace ddpipe::telemetry {
class ProgressMeter;
class RankMetrics;
}  // namespace ddpipe::telemetry

namespace ddpipe::train {

// One training step as this rank saw it.
struct StepReport {
  int64_t epoch = 0;     // 0-based
  int64_t step = 0;      // steps of the epoch done after this one
  int64_t steps = 0;     // of the whole epoch
  double seconds = 0.0;  // wall time of the step, data wait included
  double waited = 0.0;   // of which waiting for other ranks (buffer broadcast, gradient allreduce)
  double images = 0.0;
  double loss_sum = 0.0, correct = 0.0;  // of this step's samples
  double lr = 0.0;
  // Since the epoch began, on this rank: waiting for data, waiting for the allreduce, and the
  // allreduce's whole window (first bucket launched to all reduced).
  double data_wait_s = 0.0, comm_exposed_s = 0.0, comm_s = 0.0;
};

class RankTelemetry {
 public:
  // Rank 0 writes the run record at once (status running, attempt = $DDPIPE_RESTART_COUNT);
  // an empty `run_id` gets one ("run-<stamp>-<pid>").
  RankTelemetry(const core::Config& config, const dist::WorldInfo& world, storage::Store& store,
                std::string run_id);
  ~RankTelemetry();

  // Every rank: learns every rank's host name (one allreduce; all ranks must call it).
  void exchange_hosts(dist::Communicator& comm);
  // Rank 0: records the stamp of the run's metrics object in the run record (`stamp`), so that
  // readers find its epochs and step history before a version exists. Other ranks: nothing.
  void set_stamp(const std::string& stamp);
  void begin_epoch(int64_t epoch, int64_t steps, int64_t first_step);
  // Test-only: "<rank>:<seconds>" in $DDPIPE_TEST_SLOW_RANK makes that rank sleep so long in
  // every step, where the trainer calls this (docs/telemetry.md: the straggler test).
  void test_slowdown() const;
  // After each step, on every rank. Cheap unless a progress event is due (rank 0).
  void after_step(const StepReport& step);
  // Rank 0 has no more steps in the epoch: flushes the last progress window.
  void end_steps();
  // The mean busy step time of this rank in the epoch (wall time minus exposed communication):
  // what the epoch's allreduce carries for the straggler check.
  double busy_step_seconds() const;
  // Every rank, with the epoch's metrics and every rank's busy step time: adds "straggler" to
  // `metrics` (world size > 1) and, on rank 0, warns about one, and updates the run record.
  void end_epoch(nlohmann::json& metrics, const std::vector<double>& rank_busy_step_seconds);
  // Seconds and outcome of a checkpoint or version upload (from the upload thread).
  void upload_done(const std::string& what, double seconds, bool ok);

  // Rank 0: every progress event so far (the step history, metrics_v<stamp>.steps.jsonl).
  const std::vector<nlohmann::json>& step_rows() const { return rows_; }
  // Rank 0, final: the record says succeeded with `version`, or failed with the error.
  void succeeded(const std::string& version);
  void failed(const std::string& message, int exit_code);
  // Rank 0, the job stopped for a preemption: the record says restarting (exit 143).
  void preempted(const std::string& message);

  // Test-only: with $DDPIPE_TEST_SAMPLE_LOG=<dir>, every rank appends a line
  // "<epoch> <step> <rank> <world size> <sample index>…" per step to <dir>/samples-<rank>-<pid>.txt
  // (docs/fault-tolerance.md: the resize test).
  void test_log_samples(int64_t epoch, int64_t step, const int64_t* samples, int64_t count);

 private:
  void add_row(nlohmann::json event);  // a progress event as a row of the step history

  const core::Config& config_;
  const dist::WorldInfo& world_;
  std::vector<std::string> hosts_;
  std::unique_ptr<std::ofstream> sample_log_;
  std::unique_ptr<telemetry::RankMetrics> metrics_;
  std::unique_ptr<telemetry::ProgressMeter> meter_;  // rank 0
  std::unique_ptr<runs::RunTracker> tracker_;        // rank 0
  std::vector<nlohmann::json> rows_;
  StepReport last_;  // the previous step of the epoch (for the counters' increments)
  double busy_seconds_ = 0.0;
  int64_t busy_steps_ = 0;
  const double slow_step_s_;  // $DDPIPE_TEST_SLOW_RANK for this rank
};

}  // namespace ddpipe::train
