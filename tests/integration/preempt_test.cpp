// Preemption and resizing with real processes (docs/fault-tolerance.md): SIGTERM to one rank of
// a deterministic 2-rank job makes both stop at one step, checkpoint and exit 143 (retryable), and
// the restarted job ends bit-identical to an uninterrupted one; a 2-rank job stopped mid-epoch
// resumes with 1 rank and trains every step on the same samples; a rank that keeps failing is
// dropped by `--min-nproc` and the job finishes with fewer ranks. Which samples each rank trained
// on at each step comes from $DDPIPE_TEST_SAMPLE_LOG.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "published_state.h"
#include "test_util.h"

namespace ddpipe {
namespace {

namespace fs = std::filesystem;
using testing::run_command;

// The steps every rank trained, from the sample logs of one or more attempts.
struct SampleLog {
  struct Line {
    int64_t epoch = 0, step = 0, rank = 0, world = 0;
    std::vector<int64_t> samples;
  };
  std::vector<Line> lines;

  // (epoch, step) → the samples of all ranks, and how many rank-lines trained it.
  std::map<std::pair<int64_t, int64_t>, std::multiset<int64_t>> by_step() const {
    std::map<std::pair<int64_t, int64_t>, std::multiset<int64_t>> out;
    for (const auto& l : lines) out[{l.epoch, l.step}].insert(l.samples.begin(), l.samples.end());
    return out;
  }
  // (epoch, step) → the samples of all ranks as a set (a step trained again after a crash adds
  // nothing).
  std::map<std::pair<int64_t, int64_t>, std::set<int64_t>> step_sets() const {
    std::map<std::pair<int64_t, int64_t>, std::set<int64_t>> out;
    for (const auto& l : lines) out[{l.epoch, l.step}].insert(l.samples.begin(), l.samples.end());
    return out;
  }
  // (epoch, step, rank) → how often it was trained.
  std::map<std::tuple<int64_t, int64_t, int64_t>, int> counts() const {
    std::map<std::tuple<int64_t, int64_t, int64_t>, int> out;
    for (const auto& l : lines) ++out[{l.epoch, l.step, l.rank}];
    return out;
  }
};

SampleLog read_sample_log(const fs::path& dir) {
  SampleLog log;
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(dir, ec)) {
    std::ifstream in(file.path());
    for (std::string text; std::getline(in, text);) {
      std::istringstream fields(text);
      SampleLog::Line l;
      fields >> l.epoch >> l.step >> l.rank >> l.world;
      for (int64_t i; fields >> i;) l.samples.push_back(i);
      log.lines.push_back(std::move(l));
    }
  }
  return log;
}

// Waits until some rank has trained step `step` of epoch `epoch` (0-based); false after 120 s.
bool wait_for_step(const fs::path& sample_dir, int64_t epoch, int64_t step) {
  for (int i = 0; i < 6000; ++i) {
    for (const auto& l : read_sample_log(sample_dir).lines) {
      if (l.epoch > epoch || (l.epoch == epoch && l.step >= step)) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The JSON log lines of `output` whose msg starts with `msg`.
std::vector<nlohmann::json> log_events(const std::string& output, const std::string& msg) {
  std::vector<nlohmann::json> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("msg", "").rfind(msg, 0) == 0) out.push_back(j);
  }
  return out;
}

// 4 epochs of 64 steps of 64 samples (2 ranks × 32) on a synthetic dataset: fast, exact.
std::string synthetic_job(const fs::path& dir) {
  return " --store " + (dir / "store").string() + " --set cache_dir=" + (dir / "cache").string() +
         " --set name=pre --set data.format=synthetic --set data.name=pre-synth"
         " --set data.channels=1 --set data.height=16 --set data.width=16"
         " --set data.train_size=4096 --set data.test_size=64 --set data.classes=4"
         " --set model.width=8 --set train.batch_size=32 --set train.threads=1"
         " --set loader.workers=1 --set deterministic=true --set dist.nproc=2 --epochs 4";
}

// ddpipe with the sample log in `samples` (and rank 1 slowed down, so that a signal lands
// mid-epoch; timing only, the arithmetic is unchanged).
std::string ddpipe_env(const fs::path& samples, bool slow) {
  fs::create_directories(samples);
  return "env DDPIPE_TEST_SAMPLE_LOG=" + samples.string() +
         (slow ? " DDPIPE_TEST_SLOW_RANK=1:0.05 " : " ") + testing::ddpipe_binary();
}

TEST(Preemption, SigtermToOneRankStopsBothAtOneStepAndResumesBitIdentical) {
  testing::TempDir dir;
  const auto ref =
      run_command(ddpipe_env(dir / "ref-samples", false) + " run" + synthetic_job(dir / "ref"));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;

  const fs::path samples = dir / "samples", log = dir / "preempted.log";
  const pid_t run = testing::start_background(
      ddpipe_env(samples, true) + " run --max-restarts 1" + synthetic_job(dir / "job"), log);
  ASSERT_TRUE(wait_for_step(samples, 1, 10)) << read_text(log);
  const auto ranks = testing::children_of(run);
  ASSERT_EQ(ranks.size(), 2u) << read_text(log);
  ASSERT_EQ(kill(ranks[1], SIGTERM), 0);
  ASSERT_EQ(testing::wait_exit(run), 0) << read_text(log);
  const std::string output = read_text(log);

  // Both ranks stopped at the same step, mid-epoch, with the retryable code; the restart
  // resumed there.
  const auto stops = log_events(output, "preempted: stopping");
  ASSERT_EQ(stops.size(), 2u) << output;
  const std::string where = stops[0]["checkpoint"];
  EXPECT_EQ(stops[1]["checkpoint"], where);
  EXPECT_NE(stops[0]["rank"], stops[1]["rank"]);
  EXPECT_GT(stops[0]["step"].get<int64_t>(), 0) << "not mid-epoch: " << where;
  EXPECT_EQ(log_events(output, "preempted (SIGTERM): checkpoint " + where + " stored").size(), 2u)
      << output;
  const auto resumed = log_events(output, "resuming from checkpoint");
  ASSERT_EQ(resumed.size(), 2u) << output;
  EXPECT_EQ(resumed[0]["checkpoint"], where);
  const auto attempts = log_events(output, "job succeeded after restarts");
  ASSERT_EQ(attempts.size(), 1u) << output;
  EXPECT_EQ(attempts[0]["attempts"][0]["exit_code"], 143);  // preempted: retried

  // No step repeated and none lost: every (epoch, step, rank) trained once, on the samples of
  // the uninterrupted run.
  const SampleLog reference = read_sample_log(dir / "ref-samples");
  const SampleLog preempted = read_sample_log(samples);
  EXPECT_EQ(preempted.counts(), reference.counts());
  for (const auto& [key, n] : preempted.counts()) {
    EXPECT_EQ(n, 1) << "epoch " << std::get<0>(key) << " step " << std::get<1>(key) << " rank "
                    << std::get<2>(key) << " trained " << n << " times";
  }
  EXPECT_EQ(preempted.by_step(), reference.by_step());

  const model::ModelSpec spec{"resnet-mini", 1, 4, 8};
  auto a = testing::published_state(dir / "ref/store", "pre", spec);
  auto b = testing::published_state(dir / "job/store", "pre", spec);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
}

// `ddpipe run --min-nproc 1`: rank 1 of 2 killed (kill -9) in two attempts in a row makes the
// launcher restart with 1 rank, which resumes the run's checkpoint taken at 2 ranks; every step
// of the job trains on the samples of an uninterrupted 2-rank run.
TEST(Elastic, RankThatKeepsFailingIsDroppedAndTheJobResumesWithFewerRanks) {
  testing::TempDir dir;
  const auto ref =
      run_command(ddpipe_env(dir / "ref-samples", false) + " run" + synthetic_job(dir / "ref"));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;

  const fs::path samples = dir / "samples", log = dir / "elastic.log";
  const pid_t run =
      testing::start_background(ddpipe_env(samples, true) +
                                    " run --max-restarts 3 --min-nproc 1 --run-id elastic-1"
                                    " --set checkpoint.every_steps=10" +
                                    synthetic_job(dir / "job"),
                                log);
  for (int kill_number = 0; kill_number < 2; ++kill_number) {
    // Wait for a group of 2 that has trained 25 more steps on rank 1, then kill rank 1.
    const size_t before = read_sample_log(samples).lines.size();
    bool killed = false;
    for (int i = 0; i < 6000 && !killed; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const auto ranks = testing::children_of(run);
      if (ranks.size() == 2 && read_sample_log(samples).lines.size() >= before + 50) {
        ASSERT_EQ(kill(ranks[1], SIGKILL), 0);
        killed = true;
      }
    }
    ASSERT_TRUE(killed) << "attempt " << kill_number << " never trained:\n" << read_text(log);
  }
  ASSERT_EQ(testing::wait_exit(run), 0) << read_text(log);
  const std::string output = read_text(log);
  const auto shrink = log_events(output, "the same rank failed first twice in a row: restarting");
  ASSERT_EQ(shrink.size(), 1u) << output;
  EXPECT_EQ(shrink[0]["new_nproc"], 1);
  const auto change = log_events(output, "resuming at another world size");
  ASSERT_EQ(change.size(), 1u) << output;
  EXPECT_EQ(change[0]["world_size"], 1);

  const SampleLog job = read_sample_log(samples);
  std::set<int64_t> worlds;
  for (const auto& l : job.lines) worlds.insert(l.world);
  EXPECT_EQ(worlds, (std::set<int64_t>{1, 2}));
  EXPECT_EQ(job.step_sets(), read_sample_log(dir / "ref-samples").step_sets());
}

// The first `train` and `test` images of Debian's Fashion-MNIST as plain IDX files in `dir`
// (a dataset small enough for whole epochs, and one a model learns); false without the package.
bool fashion_subset(const fs::path& dir, int64_t train, int64_t test) {
  const fs::path src = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(src / "train-images-idx3-ubyte.gz")) return false;
  fs::create_directories(dir);
  auto cut = [&](const std::string& stem, int64_t header, int64_t item, int64_t n) {
    const fs::path out = dir / stem;
    const auto r = run_command("gzip -dc " + (src / (stem + ".gz")).string() + " | head -c " +
                               std::to_string(header + item * n) + " > " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::fstream f(out, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4);  // the item count, big-endian, after the magic number
    for (int shift = 24; shift >= 0; shift -= 8) f.put(static_cast<char>((n >> shift) & 0xff));
  };
  cut("train-images-idx3-ubyte", 16, 28 * 28, train);
  cut("train-labels-idx1-ubyte", 8, 1, train);
  cut("t10k-images-idx3-ubyte", 16, 28 * 28, test);
  cut("t10k-labels-idx1-ubyte", 8, 1, test);
  return true;
}

double test_accuracy(const std::string& output) {
  const auto at = output.find("test accuracy ");
  return at == std::string::npos ? -1.0 : std::stod(output.substr(at + 14)) / 100.0;
}

// A 2-rank job stopped mid-epoch (SIGTERM to its launcher) resumes with 1 rank: every step
// trains on the samples of the uninterrupted 2-rank run, every training sample once in the
// epoch of the change, and the accuracy stays within kResizeTolerance of that run's (batch-norm
// statistics come from 64 images per rank instead of 32: docs/fault-tolerance.md).
constexpr double kResizeTolerance = 0.03;

TEST(Resize, TwoRankCheckpointResumesWithOneRank) {
  testing::TempDir dir;
  const int64_t train_size = 4096;
  if (!fashion_subset(dir / "fashion", train_size, 1000)) {
    FAIL() << "needs Debian's dataset-fashion-mnist, a main dependency "
              "(scripts/install-deps.sh installs it)";
  }
  auto job = [&](const std::string& store, int64_t nproc) {
    return " --store " + (dir / store).string() + " --set cache_dir=" + (dir / "cache").string() +
           " --set name=resize --data-path " + (dir / "fashion").string() +
           " --set data.name=fashion-small --set model.width=8 --set train.batch_size=32"
           " --set train.threads=1 --set loader.workers=1 --set deterministic=true --epochs 3"
           " --set dist.nproc=" +
           std::to_string(nproc);
  };
  const auto ref = run_command(ddpipe_env(dir / "ref-samples", false) + " run" + job("ref", 2));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;

  const fs::path samples = dir / "samples", log = dir / "stopped.log";
  const pid_t run = testing::start_background(
      ddpipe_env(samples, true) + " run --run-id resize-1" + job("job", 2), log);
  ASSERT_TRUE(wait_for_step(samples, 1, 20)) << read_text(log);
  ASSERT_EQ(kill(run, SIGTERM), 0);  // the launcher passes it on to both ranks
  EXPECT_EQ(testing::wait_exit(run), 143) << read_text(log);  // the ranks' code: preempted
  const auto stops = log_events(read_text(log), "preempted: stopping");
  ASSERT_EQ(stops.size(), 2u) << read_text(log);
  EXPECT_EQ(stops[0]["epoch"], 1);

  const auto resumed =
      run_command(ddpipe_env(samples, false) + " run --run-id resize-1" + job("job", 1));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const auto change = log_events(resumed.output, "resuming at another world size");
  ASSERT_EQ(change.size(), 1u) << resumed.output;
  EXPECT_EQ(change[0]["checkpointed_world_size"], 2);
  EXPECT_EQ(change[0]["per_rank_batch"], 64);

  const SampleLog reference = read_sample_log(dir / "ref-samples");
  const SampleLog both = read_sample_log(samples);
  EXPECT_EQ(both.by_step(), reference.by_step());  // the same samples at every step
  std::multiset<int64_t> epoch_of_change;
  std::set<int64_t> worlds;
  for (const auto& l : both.lines) {
    if (l.epoch != 1) continue;
    epoch_of_change.insert(l.samples.begin(), l.samples.end());
    worlds.insert(l.world);
  }
  EXPECT_EQ(worlds, (std::set<int64_t>{1, 2}));
  ASSERT_EQ(epoch_of_change.size(), static_cast<size_t>(train_size));
  for (int64_t i = 0; i < train_size; ++i) EXPECT_EQ(epoch_of_change.count(i), 1u) << i;

  const double want = test_accuracy(ref.output), got = test_accuracy(resumed.output);
  EXPECT_GT(want, 0.5) << ref.output;  // it learned something
  EXPECT_NEAR(got, want, kResizeTolerance) << resumed.output;
  std::cout << "test accuracy: uninterrupted 2 ranks " << want << ", resumed with 1 rank " << got
            << "\n";
}

}  // namespace
}  // namespace ddpipe
