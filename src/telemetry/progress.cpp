#include "telemetry/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"

namespace ddpipe::telemetry {
namespace {

// a / b, 0 when b is not positive (JSON has no infinity).
double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

// "1:05:09", "4:07": hours only when there are some.
std::string clock_text(double seconds) {
  const auto s = static_cast<long long>(std::llround(std::max(seconds, 0.0)));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

const ProgressOptions& validated(const ProgressOptions& o) {
  if (o.every_steps < 0 || o.every_s < 0 || std::isnan(o.every_s)) {
    core::fail_usage(
        "progress: every_steps and every_s must be >= 0 (0 turns a trigger off), got " +
        std::to_string(o.every_steps) + " and " + std::to_string(o.every_s));
  }
  if (o.epochs < 1 || o.world_size < 1) {
    core::fail_usage("progress: epochs and world_size must be >= 1, got " +
                     std::to_string(o.epochs) + " and " + std::to_string(o.world_size));
  }
  return o;
}

}  // namespace

void ProgressMeter::Sums::add(const StepSample& s) {
  loss_sum += s.loss_sum;
  correct += s.correct;
  count += s.count;
  images += s.images;
}

ProgressMeter::ProgressMeter(ProgressOptions options)
    : options_(validated(options)),
      draw_bar_(options.draw_bar && !core::log::json() && isatty(STDERR_FILENO)) {}

ProgressMeter::~ProgressMeter() = default;

void ProgressMeter::begin_epoch(int64_t epoch, int64_t steps, int64_t first_step, double now) {
  if (bar_) bar_->finish();
  if (!started_) t_start_ = now;
  if (started_ && epoch_whole_) last_epoch_s_ = now - t_epoch_;
  started_ = in_epoch_ = true;
  epoch_whole_ = false;
  epoch_ = epoch;
  steps_ = steps;
  first_step_ = first_step;
  t_epoch_ = now;
  last_ = StepSample{};
  last_.step = first_step;
  last_.now = now;
  epoch_sums_ = window_ = Sums{};
  window_step0_ = first_step;
  window_t0_ = now;
  window_wait0_ = window_comm0_ = 0;
  last_draw_ = -1e300;
  if (draw_bar_) {
    bar_ = std::make_unique<core::ProgressBar>(
        "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs), steps, true);
  }
}

std::optional<nlohmann::json> ProgressMeter::step(const StepSample& sample) {
  if (!in_epoch_) {
    throw core::Error(core::ErrorKind::kInternal,
                      "ProgressMeter::step: no epoch begun (call begin_epoch first)");
  }
  last_ = sample;
  window_.add(sample);
  epoch_sums_.add(sample);
  if (draw_bar_ && (sample.now - last_draw_ >= 0.1 || sample.step >= steps_)) draw(sample.now);
  const bool by_steps =
      options_.every_steps > 0 && sample.step - window_step0_ >= options_.every_steps;
  const bool by_time = options_.every_s > 0 && sample.now - window_t0_ >= options_.every_s;
  if (!by_steps && !by_time) return std::nullopt;
  return emit(sample.now);
}

std::optional<nlohmann::json> ProgressMeter::end_epoch(double now) {
  if (!in_epoch_) return std::nullopt;
  std::optional<nlohmann::json> e;
  const bool events = options_.every_steps > 0 || options_.every_s > 0;
  if (events && last_.step > window_step0_) e = emit(now);
  if (bar_) bar_->finish();
  bar_.reset();
  in_epoch_ = false;
  epoch_whole_ = first_step_ == 0;
  return e;
}

// The event of the window ending at `now`, logged unless the bar is drawn; a new window begins.
std::optional<nlohmann::json> ProgressMeter::emit(double now) {
  nlohmann::json e = event(now);
  if (!draw_bar_) core::log::info("train", "progress", e);
  window_ = Sums{};
  window_step0_ = last_.step;
  window_t0_ = now;
  window_wait0_ = last_.data_wait_s;
  window_comm0_ = last_.comm_exposed_s;
  return e;
}

nlohmann::json ProgressMeter::event(double now) const {
  const double seconds = now - window_t0_;
  return {{"event", "progress"},
          {"epoch", epoch_ + 1},
          {"epochs", options_.epochs},
          {"step", last_.step},
          {"steps", steps_},
          {"global_step", epoch_ * steps_ + last_.step},
          {"loss", ratio(window_.loss_sum, window_.count)},
          {"acc", ratio(window_.correct, window_.count)},
          {"lr", last_.lr},
          {"images_per_second",
           ratio(window_.images * static_cast<double>(options_.world_size), seconds)},
          {"data_wait_share", ratio(last_.data_wait_s - window_wait0_, seconds)},
          {"comm_exposed_share", ratio(last_.comm_exposed_s - window_comm0_, seconds)},
          {"eta_epoch_s", eta_epoch(now)},
          {"eta_job_s", eta_job(now)},
          {"elapsed_s", now - t_start_}};
}

double ProgressMeter::mean_step_seconds(double now) const {
  return ratio(now - t_epoch_, static_cast<double>(last_.step - first_step_));
}

double ProgressMeter::eta_epoch(double now) const {
  return static_cast<double>(std::max<int64_t>(steps_ - last_.step, 0)) * mean_step_seconds(now);
}

double ProgressMeter::eta_job(double now) const {
  const double epochs_left =
      static_cast<double>(std::max<int64_t>(options_.epochs - epoch_ - 1, 0));
  const double per_epoch =
      last_epoch_s_ > 0 ? last_epoch_s_ : static_cast<double>(steps_) * mean_step_seconds(now);
  return eta_epoch(now) + epochs_left * per_epoch;
}

// The bar with the epoch's figures so far: "2713 img/s  loss 0.3121  acc 0.8812  ETA 1:20 (job
// 33:05)". Formats, so only ~10 times a second (the bar draws no more often anyway).
void ProgressMeter::draw(double now) {
  last_draw_ = now;
  char buf[160];
  std::snprintf(
      buf, sizeof buf, "%.0f img/s  loss %.4f  acc %.4f  ETA %s (job %s)",
      ratio(epoch_sums_.images * static_cast<double>(options_.world_size), now - t_epoch_),
      ratio(epoch_sums_.loss_sum, epoch_sums_.count), ratio(epoch_sums_.correct, epoch_sums_.count),
      clock_text(eta_epoch(now)).c_str(), clock_text(eta_job(now)).c_str());
  bar_->update(last_.step, buf);
}

}  // namespace ddpipe::telemetry
