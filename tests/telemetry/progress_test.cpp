#include "telemetry/progress.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "capture_stderr.h"
#include "core/log.h"
#include "test_util.h"

namespace ddpipe::telemetry {
namespace {

using nlohmann::json;

// Steps of a synthetic run: step k of an epoch (1-based) ends at t0 + k × dt, with 4 samples of
// per-sample loss k, all correct on even steps, 32 images, and 0.05 s data wait and 0.1 s
// exposed communication per step.
struct SyntheticRun {
  double t0 = 100, dt = 0.5;
  StepSample at(int64_t k) const {
    StepSample s;
    s.step = k;
    s.images = 32;
    s.count = 4;
    s.loss_sum = 4.0 * static_cast<double>(k);
    s.correct = k % 2 == 0 ? 4 : 0;
    s.lr = 0.1;
    s.data_wait_s = 0.05 * static_cast<double>(k);
    s.comm_exposed_s = 0.1 * static_cast<double>(k);
    s.now = t0 + dt * static_cast<double>(k);
    return s;
  }
};

ProgressOptions quiet(int64_t every_steps, double every_s) {
  ProgressOptions o;
  o.every_steps = every_steps;
  o.every_s = every_s;
  o.draw_bar = false;
  return o;
}

// Runs steps first+1..last of an epoch begun at run.t0 + first × dt; returns every event, the
// end_epoch one last.
std::vector<json> run_epoch(ProgressMeter& meter, const SyntheticRun& run, int64_t epoch,
                            int64_t steps, int64_t first = 0) {
  std::vector<json> events;
  meter.begin_epoch(epoch, steps, first, run.t0 + run.dt * static_cast<double>(first));
  for (int64_t k = first + 1; k <= steps; ++k) {
    if (auto e = meter.step(run.at(k))) events.push_back(*e);
  }
  if (auto e = meter.end_epoch(run.at(steps).now)) events.push_back(*e);
  return events;
}

std::vector<int64_t> steps_of(const std::vector<json>& events) {
  std::vector<int64_t> steps;
  for (const json& e : events) steps.push_back(e.at("step").get<int64_t>());
  return steps;
}

TEST(ProgressMeter, EveryTenStepsOverThirtyFiveGivesTenTwentyThirtyAndThirtyFiveAtTheEnd) {
  CaptureStderr quiet_log;
  ProgressMeter meter(quiet(10, 0));
  EXPECT_FALSE(meter.draws_bar());
  const auto events = run_epoch(meter, SyntheticRun{}, 0, 35);
  EXPECT_EQ(steps_of(events), (std::vector<int64_t>{10, 20, 30, 35}));
  for (const json& e : events) {
    EXPECT_EQ(e.at("event"), "progress");
    EXPECT_EQ(e.at("epoch"), 1);
    EXPECT_EQ(e.at("epochs"), 1);
    EXPECT_EQ(e.at("steps"), 35);
  }
}

TEST(ProgressMeter, LossAndAccuracyAreTheMeansOfTheWindow) {
  CaptureStderr quiet_log;
  ProgressMeter meter(quiet(10, 0));
  const auto events = run_epoch(meter, SyntheticRun{}, 0, 35);
  ASSERT_EQ(events.size(), 4u);
  // Per-sample loss k on step k: the mean of 1..10 is 5.5, of 11..20 15.5, of 31..35 33.
  EXPECT_DOUBLE_EQ(events[0].at("loss").get<double>(), 5.5);
  EXPECT_DOUBLE_EQ(events[1].at("loss").get<double>(), 15.5);
  EXPECT_DOUBLE_EQ(events[3].at("loss").get<double>(), 33.0);
  // Correct on even steps: half of 1..10, two of the five steps 31..35.
  EXPECT_DOUBLE_EQ(events[0].at("acc").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(events[3].at("acc").get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(events[0].at("lr").get<double>(), 0.1);
}

TEST(ProgressMeter, RateSharesEtasAndElapsedFromTheSamplesTimes) {
  CaptureStderr quiet_log;
  ProgressOptions o = quiet(10, 0);
  o.world_size = 4;
  o.epochs = 3;
  ProgressMeter meter(o);
  SyntheticRun run;  // 0.5 s a step, from t = 100
  const auto first = run_epoch(meter, run, 0, 35);
  ASSERT_EQ(first.size(), 4u);
  const json& e = first[1];  // steps 11..20, t 105..110
  // 10 steps × 32 images × 4 ranks in 5 s.
  EXPECT_DOUBLE_EQ(e.at("images_per_second").get<double>(), 256.0);
  EXPECT_NEAR(e.at("data_wait_share").get<double>(), 0.1, 1e-12);     // 0.5 s of 5
  EXPECT_NEAR(e.at("comm_exposed_share").get<double>(), 0.2, 1e-12);  // 1 s of 5
  EXPECT_DOUBLE_EQ(e.at("eta_epoch_s").get<double>(), 7.5);           // 15 steps × 0.5 s
  EXPECT_DOUBLE_EQ(e.at("eta_job_s").get<double>(), 7.5 + 2 * 35 * 0.5);
  EXPECT_DOUBLE_EQ(e.at("elapsed_s").get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(first[3].at("images_per_second").get<double>(), 5 * 32 * 4 / 2.5);
  EXPECT_DOUBLE_EQ(first[3].at("eta_epoch_s").get<double>(), 0.0);

  // Epoch 2 begins 20 s after epoch 1 did (17.5 s of steps, 2.5 s of evaluation): the remaining
  // epoch is estimated at 20 s.
  run.t0 = 120;
  const auto second = run_epoch(meter, run, 1, 35);
  const json& f = second[0];  // step 10, t = 125
  EXPECT_EQ(f.at("epoch"), 2);
  EXPECT_EQ(f.at("global_step"), 45);
  EXPECT_DOUBLE_EQ(f.at("eta_epoch_s").get<double>(), 12.5);
  EXPECT_DOUBLE_EQ(f.at("eta_job_s").get<double>(), 12.5 + 20.0);
  EXPECT_DOUBLE_EQ(f.at("elapsed_s").get<double>(), 25.0);
  EXPECT_NEAR(f.at("data_wait_share").get<double>(), 0.1, 1e-12);  // counters restart per epoch
}

TEST(ProgressMeter, EverySecondsTriggerUsesTheSamplesClock) {
  CaptureStderr quiet_log;
  ProgressMeter meter(quiet(0, 3));
  SyntheticRun run;
  run.dt = 1.0;
  const auto events = run_epoch(meter, run, 0, 10);
  EXPECT_EQ(steps_of(events), (std::vector<int64_t>{3, 6, 9, 10}));
  EXPECT_DOUBLE_EQ(events[0].at("images_per_second").get<double>(), 32.0);

  // Whichever comes first: 4 steps or 3 s, with steps of 0.5 s then 2 s.
  ProgressMeter both(quiet(4, 3));
  both.begin_epoch(0, 100, 0, 0);
  std::vector<int64_t> due;
  const std::vector<double> times = {0.5, 1, 1.5, 2, 4, 6, 6.5, 7, 9.5};
  for (size_t i = 0; i < times.size(); ++i) {
    StepSample s = run.at(static_cast<int64_t>(i) + 1);
    s.now = times[i];
    if (both.step(s)) due.push_back(s.step);
  }
  EXPECT_EQ(due, (std::vector<int64_t>{4, 6, 9}));  // 4 steps; 4 s after t=2; 3.5 s after t=6
}

TEST(ProgressMeter, BothTriggersOffGivesNoEvents) {
  CaptureStderr capture;
  ProgressOptions o = quiet(0, 0);
  o.epochs = 2;
  ProgressMeter meter(o);
  EXPECT_TRUE(run_epoch(meter, SyntheticRun{}, 0, 35).empty());
  EXPECT_TRUE(run_epoch(meter, SyntheticRun{}, 1, 35).empty());
  EXPECT_EQ(capture.text(), "");
}

TEST(ProgressMeter, ResumedEpochCountsFromItsFirstStep) {
  CaptureStderr quiet_log;
  ProgressOptions o = quiet(10, 0);
  o.epochs = 5;
  ProgressMeter meter(o);
  SyntheticRun run;
  run.t0 = 0;
  run.dt = 1.0;
  // Resumed in epoch 3 after 12 of 35 steps: the window and the step-time mean begin there.
  const auto events = run_epoch(meter, run, 2, 35, 12);
  EXPECT_EQ(steps_of(events), (std::vector<int64_t>{22, 32, 35}));
  const json& e = events[0];
  EXPECT_EQ(e.at("global_step"), 2 * 35 + 22);
  EXPECT_DOUBLE_EQ(e.at("loss").get<double>(), 17.5);  // mean of 13..22
  EXPECT_DOUBLE_EQ(e.at("images_per_second").get<double>(), 32.0);
  EXPECT_DOUBLE_EQ(e.at("eta_epoch_s").get<double>(), 13.0);
  EXPECT_DOUBLE_EQ(e.at("eta_job_s").get<double>(), 13.0 + 2 * 35.0);
  EXPECT_DOUBLE_EQ(e.at("elapsed_s").get<double>(), 10.0);
  // A resumed epoch is not a whole one (28 s from begin to begin, for 23 steps): the next one
  // estimates the last epoch from its own step time, 35 × 1 s.
  run.t0 = 40;
  const auto next = run_epoch(meter, run, 3, 35);
  EXPECT_EQ(next[0].at("global_step"), 3 * 35 + 10);
  EXPECT_DOUBLE_EQ(next[0].at("eta_job_s").get<double>(), 25.0 + 35.0);
}

TEST(ProgressMeter, GlobalStepCountsEarlierEpochs) {
  CaptureStderr quiet_log;
  ProgressOptions o = quiet(20, 0);
  o.epochs = 3;
  ProgressMeter meter(o);
  std::vector<int64_t> global;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    for (const json& e : run_epoch(meter, SyntheticRun{}, epoch, 30))
      global.push_back(e.at("global_step"));
  }
  EXPECT_EQ(global, (std::vector<int64_t>{20, 30, 50, 60, 80, 90}));
}

TEST(ProgressMeter, EventsAreLoggedAsJsonLinesWithoutATerminal) {
  const bool was_json = core::log::json();
  core::log::set_json(true);  // as when stderr is no TTY
  ProgressOptions o = quiet(10, 0);
  o.draw_bar = true;  // JSON logs: no bar, whatever the caller asked
  std::string text;
  std::vector<json> returned;
  {
    CaptureStderr capture;
    ProgressMeter meter(o);
    EXPECT_FALSE(meter.draws_bar());
    returned = run_epoch(meter, SyntheticRun{}, 0, 25);
    text = capture.text();
  }
  core::log::set_json(was_json);
  std::istringstream lines(text);
  std::vector<json> logged;
  for (std::string line; std::getline(lines, line);) logged.push_back(json::parse(line));
  ASSERT_EQ(logged.size(), 3u) << text;
  ASSERT_EQ(returned.size(), 3u);
  for (size_t i = 0; i < logged.size(); ++i) {
    EXPECT_EQ(logged[i].at("component"), "train");
    EXPECT_EQ(logged[i].at("msg"), "progress");
    EXPECT_EQ(logged[i].at("level"), "info");
    for (const auto& [key, value] : returned[i].items()) EXPECT_EQ(logged[i].at(key), value) << key;
  }
  EXPECT_EQ(logged[2].at("step"), 25);
}

TEST(ProgressMeter, RejectsBadOptionsAndStepsOutsideAnEpoch) {
  ProgressOptions o = quiet(-1, 0);
  EXPECT_NE(ddpipe::testing::usage_error([&] { ProgressMeter m(o); }).find("every_steps"),
            std::string::npos);
  o = quiet(10, 0);
  o.world_size = 0;
  EXPECT_NE(ddpipe::testing::usage_error([&] { ProgressMeter m(o); }).find("world_size"),
            std::string::npos);
  ProgressMeter meter(quiet(10, 0));
  EXPECT_NE(ddpipe::testing::error_of(core::ErrorKind::kInternal,
                                      [&] { meter.step(SyntheticRun{}.at(1)); })
                .find("begin_epoch"),
            std::string::npos);
  EXPECT_FALSE(meter.end_epoch(0).has_value());
}

}  // namespace
}  // namespace ddpipe::telemetry
