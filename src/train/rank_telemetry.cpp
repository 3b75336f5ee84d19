#include "train/rank_telemetry.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/communicator.h"
#include "runs/runs.h"
#include "runs/tracker.h"
#include "telemetry/progress.h"
#include "telemetry/rank_metrics.h"
#include "telemetry/stragglers.h"

namespace ddpipe::train {
namespace {

using nlohmann::json;

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

int64_t restart_count() {
  const char* v = std::getenv("DDPIPE_RESTART_COUNT");
  return v ? std::atoll(v) : 0;
}

double slowdown_from_env(int64_t rank) {
  const char* v = std::getenv("DDPIPE_TEST_SLOW_RANK");
  if (!v || !*v) return 0.0;
  const std::string s = v;
  const auto colon = s.find(':');
  try {
    if (colon != std::string::npos && std::stoll(s.substr(0, colon)) == rank) {
      return std::stod(s.substr(colon + 1));
    }
  } catch (const std::exception&) {
    core::fail_usage("DDPIPE_TEST_SLOW_RANK: expected <rank>:<seconds>, got '" + s + "'");
  }
  return 0.0;
}

// A record of this run exists: this process is a restart (the local launcher's, whose count is
// $DDPIPE_RESTART_COUNT, or a pod the operator restarted, which has none). The attempt goes up
// and the failure the previous attempt recorded itself joins the failed attempts, unless the
// launcher recorded it already.
void continue_after_failure(runs::RunRecord& record) {
  const int64_t previous = record.attempt;
  record.attempt = std::max(restart_count(), previous + 1);
  if (!record.error) return;
  if (record.attempts.empty() || record.attempts.back().attempt != previous) {
    record.attempts.push_back(
        {previous, record.error->exit_code, record.error->rank, record.error->message});
  }
}

runs::Progress progress_of(const json& event) {
  runs::Progress p;
  p.epoch = event.value("epoch", int64_t{0});
  p.epochs = event.value("epochs", int64_t{0});
  p.step = event.value("step", int64_t{0});
  p.steps = event.value("steps", int64_t{0});
  p.images_per_second = event.value("images_per_second", 0.0);
  p.eta_epoch_s = event.value("eta_epoch_s", 0.0);
  p.eta_job_s = event.value("eta_job_s", 0.0);
  return p;
}

}  // namespace

RankTelemetry::RankTelemetry(const core::Config& config, const dist::WorldInfo& world,
                             storage::Store& store, std::string run_id)
    : config_(config), world_(world), slow_step_s_(slowdown_from_env(world.rank)) {
  if (const char* dir = std::getenv("DDPIPE_TEST_SAMPLE_LOG"); dir != nullptr && *dir != '\0') {
    const auto path = std::filesystem::path(dir) / ("samples-" + std::to_string(world.rank) + "-" +
                                                    std::to_string(::getpid()) + ".txt");
    sample_log_ = std::make_unique<std::ofstream>(path, std::ios::app);
  }
  const core::TelemetryConfig& t = config.telemetry;
  const int port = t.metrics_port > 0 ? static_cast<int>(t.metrics_port + world.local_rank) : 0;
  metrics_ = std::make_unique<telemetry::RankMetrics>(
      port, telemetry::RankLabels{config.name, std::to_string(world.rank),
                                  std::to_string(world.local_rank)});
  metrics_->set_restarts(restart_count());
  if (world.rank != 0) return;
  telemetry::ProgressOptions po;
  po.every_steps = t.log_every_steps;
  po.every_s = t.log_every_s;
  po.epochs = config.train.epochs;
  po.world_size = world.world_size;
  meter_ = std::make_unique<telemetry::ProgressMeter>(po);
  if (run_id.empty())
    run_id = "run-" + core::version_timestamp() + "-" + std::to_string(::getpid());
  runs::RunRecord record;
  try {  // a restart of the run continues its record
    record = runs::read_run(store, config.name, run_id);
  } catch (const core::Error& e) {
    if (e.kind() != core::ErrorKind::kNotFound) {
      core::log::warn("runs", "cannot read the run record; writing a new one",
                      {{"error", e.what()}});
    }
  }
  record.name = config.name;
  record.run_id = run_id;
  if (record.status.empty()) {
    record.attempt = restart_count();
  } else {
    continue_after_failure(record);
  }
  record.status = runs::kRunning;
  record.world_size = world.world_size;
  record.hosts = {host_name()};
  record.error.reset();
  record.finished.clear();
  tracker_ = std::make_unique<runs::RunTracker>(store, record, t.runs_heartbeat_s);
}

RankTelemetry::~RankTelemetry() = default;

void RankTelemetry::exchange_hosts(dist::Communicator& comm) {
  std::vector<double> slots =
      telemetry::encode_host_slot(host_name(), world_.rank, world_.world_size);
  std::vector<torch::Tensor> t{torch::tensor(slots, torch::kDouble)};
  comm.allreduce_sum(t);
  const auto summed = t[0].contiguous();
  hosts_ = telemetry::decode_host_slots(
      std::vector<double>(summed.data_ptr<double>(), summed.data_ptr<double>() + summed.numel()),
      world_.world_size);
  if (tracker_) tracker_->update([this](runs::RunRecord& r) { r.hosts = hosts_; });
}

void RankTelemetry::set_stamp(const std::string& stamp) {
  if (tracker_) tracker_->update([stamp](runs::RunRecord& r) { r.stamp = stamp; });
}

void RankTelemetry::begin_epoch(int64_t epoch, int64_t steps, int64_t first_step) {
  last_ = {};
  busy_seconds_ = 0.0;
  busy_steps_ = 0;
  if (meter_) meter_->begin_epoch(epoch, steps, first_step, core::monotonic_seconds());
}

void RankTelemetry::test_slowdown() const {
  if (slow_step_s_ > 0) std::this_thread::sleep_for(std::chrono::duration<double>(slow_step_s_));
}

void RankTelemetry::after_step(const StepReport& s) {
  busy_seconds_ += s.seconds - s.waited;
  ++busy_steps_;
  metrics_->observe_step(s.seconds, s.images);
  const double count = s.images > 0 ? s.images : 1.0;
  metrics_->set_progress(s.epoch + 1, s.step, s.steps, s.loss_sum / count,
                         s.images * world_.world_size / std::max(s.seconds, 1e-9));
  metrics_->add_data_wait(s.data_wait_s - last_.data_wait_s);
  metrics_->add_comm(s.comm_exposed_s - last_.comm_exposed_s, s.comm_s - last_.comm_s);
  last_ = s;
  if (!meter_) return;
  const telemetry::StepSample sample{s.step,        s.images,         s.loss_sum,
                                     s.correct,     s.images,         s.lr,
                                     s.data_wait_s, s.comm_exposed_s, core::monotonic_seconds()};
  if (auto event = meter_->step(sample)) {
    add_row(*event);
    tracker_->update([p = progress_of(*event)](runs::RunRecord& r) { r.progress = p; });
  }
}

void RankTelemetry::end_steps() {
  if (!meter_) return;
  if (auto event = meter_->end_epoch(core::monotonic_seconds())) {
    add_row(*event);
    tracker_->update([p = progress_of(*event)](runs::RunRecord& r) { r.progress = p; });
  }
}

void RankTelemetry::add_row(json event) {
  event.erase("event");
  rows_.push_back(std::move(event));
}

double RankTelemetry::busy_step_seconds() const {
  return busy_steps_ > 0 ? busy_seconds_ / static_cast<double>(busy_steps_) : 0.0;
}

void RankTelemetry::end_epoch(json& metrics, const std::vector<double>& rank_busy_step_seconds) {
  if (world_.world_size > 1 && rank_busy_step_seconds.size() == hosts_.size()) {
    std::vector<telemetry::RankTiming> timings;
    for (size_t r = 0; r < hosts_.size(); ++r) {
      timings.push_back({static_cast<int64_t>(r), hosts_[r], rank_busy_step_seconds[r]});
    }
    const telemetry::Straggler s =
        telemetry::slowest_rank(timings, config_.telemetry.straggler_factor);
    metrics["straggler"] = s.to_json();
    if (s.is_straggler && world_.rank == 0) {
      core::log::warn("train",
                      "straggler: rank " + std::to_string(s.rank) + " on " + s.host +
                          " is slower than dist.straggler_factor x the median step time",
                      s.to_json());
    }
  }
  if (tracker_) {
    tracker_->update([&metrics](runs::RunRecord& r) { r.latest_metrics = metrics; });
  }
}

void RankTelemetry::upload_done(const std::string& what, double seconds, bool ok) {
  if (what.rfind("checkpoint", 0) == 0) metrics_->observe_checkpoint_upload(seconds, ok);
}

void RankTelemetry::succeeded(const std::string& version) {
  if (tracker_) tracker_->finish(runs::kSucceeded, std::nullopt, version);
}

void RankTelemetry::preempted(const std::string& message) {
  if (tracker_) {
    tracker_->finish(
        runs::kRestarting,
        runs::RunError{message, core::exit_code(core::ErrorKind::kPreempted), world_.rank}, "");
  }
}

void RankTelemetry::test_log_samples(int64_t epoch, int64_t step, const int64_t* samples,
                                     int64_t count) {
  if (!sample_log_) return;
  std::string line = std::to_string(epoch) + " " + std::to_string(step) + " " +
                     std::to_string(world_.rank) + " " + std::to_string(world_.world_size);
  for (int64_t i = 0; i < count; ++i) line += " " + std::to_string(samples[i]);
  *sample_log_ << line << '\n' << std::flush;
}

void RankTelemetry::failed(const std::string& message, int exit_code) {
  if (tracker_)
    tracker_->finish(runs::kFailed, runs::RunError{message, exit_code, world_.rank}, "");
}

}  // namespace ddpipe::train
