// Training from the sharded form with the real binary (docs/datasets.md): a folder of coloured
// PNG and JPEG images of varying sizes, ingested into shards by `ddpipe run`, trained by 2 ranks
// whose shard cache (data.cache_gb) holds a fraction of the dataset; it learns as the in-memory
// form of the same folder does. A deterministic 2-rank sharded run preempted mid-epoch (SIGTERM
// to a rank) resumes bit-identical to an uninterrupted one.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <array>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "colour_folder.h"
#include "core/config.h"
#include "core/fs.h"
#include "published_state.h"
#include "shards/listing.h"
#include "test_util.h"

namespace ddpipe {
namespace {

namespace fs = std::filesystem;
using testing::run_command;

// 2 ranks, batches of 2 × 16, images cropped to 16×16: `form` memory or sharded.
std::string job(const fs::path& dir, const fs::path& folder, const std::string& form,
                const std::string& store) {
  return " --store " + store + " --set cache_dir=" + (dir / "cache").string() +
         " --set name=colours --set data.format=image-folder --data-path " + folder.string() +
         " --set data.name=colours --set data.form=" + form +
         " --set data.height=16 --set data.width=16 --set features.image_size=16"
         " --set data.shard_mb=1 --set data.cache_gb=0.004 --set data.shuffle_buffer=64"
         " --set model.width=8 --set train.batch_size=16 --set train.threads=1"
         " --set loader.workers=2 --set dist.nproc=2";
}

using testing::kFormTolerance;
using testing::kMinAccuracy;
using testing::test_accuracy;
using testing::write_colour_folder;

// The sharded model of `dir`/store, trained on `folder`: `ddpipe eval` streams the sharded test
// split and finds the accuracy training recorded (the same centre crop), and `ddpipe predict` of
// the test split's original files agrees (its manifest asks for the centre crop).
void expect_eval_and_predict_as_training(const fs::path& dir, const fs::path& folder) {
  const std::string store =
      " --store " + (dir / "store").string() +
      " --set name=colours --set data.name=colours --set cache_dir=" + (dir / "cache").string();
  const auto eval = run_command(testing::ddpipe_binary() + " eval" + store);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const auto result = nlohmann::json::parse(eval.output.substr(eval.output.rfind("{\"accuracy\"")));
  storage::LocalStore local(dir / "store");
  registry::Registry reg(local);
  const auto manifest = reg.manifest("colours", reg.resolve("colours", "latest"));
  EXPECT_TRUE(manifest.preprocess.center_crop);
  EXPECT_EQ(manifest.preprocess.resize_shorter, 16 * 256 / 224);
  EXPECT_EQ(result["form"], "sharded");
  EXPECT_EQ(result["samples"].get<double>(), static_cast<double>(manifest.dataset.test_size));
  // Training evaluated on 2 ranks, possibly under bf16 autocast (train.precision auto); ddpipe
  // eval runs in float32 in other batches: an answer may flip, no more.
  const double n = result["samples"].get<double>();
  EXPECT_NEAR(result["accuracy"].get<double>(), manifest.final_metrics["test_acc"].get<double>(),
              1.0 / n + 1e-9);

  const core::Config defaults;
  const auto listing =
      shards::list_image_folder(folder, defaults.data.test_fraction, defaults.seed);
  std::string files;
  for (const auto& e : listing.test) files += " " + e.path.string();
  const auto predict = run_command(testing::ddpipe_binary() + " predict" + store + files);
  ASSERT_EQ(predict.exit_code, 0) << predict.output;
  std::istringstream lines(predict.output);
  double right = 0, seen = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("prediction") || !j.contains("file")) continue;
    ++seen;
    const std::string truth = fs::path(j["file"].get<std::string>()).parent_path().filename();
    right += j["prediction"].get<std::string>() == truth;
  }
  ASSERT_EQ(seen, static_cast<double>(listing.test.size())) << predict.output;
  // One image at a time against batches: the last bits may differ, so one answer may flip.
  EXPECT_NEAR(right / seen, result["accuracy"].get<double>(), 1.0 / seen + 1e-9);
}

TEST(ShardedTraining, TwoRanksWithASmallCacheLearnAsTheInMemoryFormDoes) {
  testing::TempDir dir;
  write_colour_folder(dir / "folder", 80);
  const auto sharded = run_command(
      testing::ddpipe_binary() + " run" +
      job(dir.path(), dir / "folder", "sharded", (dir / "store").string()) + " --epochs 5");
  ASSERT_EQ(sharded.exit_code, 0) << sharded.output;
  // The cache stayed within data.cache_gb (plus the one shard being returned), well below the
  // dataset's size.
  uint64_t cached = 0, pool = 0;
  for (const auto& f : fs::directory_iterator(dir / "cache" / "shards")) cached += f.file_size();
  for (const auto& f : fs::directory_iterator(dir / "store" / "datasets" / "colours" / "shards"))
    pool += f.file_size();
  EXPECT_GT(pool, 8u << 20) << "the dataset is several shards";
  EXPECT_LT(cached, pool / 2) << "the cache held a fraction of them";
  expect_eval_and_predict_as_training(dir.path(), dir / "folder");
  const auto memory = run_command(
      testing::ddpipe_binary() + " run" +
      job(dir.path(), dir / "folder", "memory", (dir / "store-mem").string()) + " --epochs 5");
  ASSERT_EQ(memory.exit_code, 0) << memory.output;
  const double s = test_accuracy(sharded.output), m = test_accuracy(memory.output);
  std::cout << "test accuracy: sharded " << s << ", in memory " << m << "\n";
  EXPECT_GE(s, kMinAccuracy) << sharded.output;
  EXPECT_GE(m, kMinAccuracy) << memory.output;
  EXPECT_NEAR(s, m, kFormTolerance);
}

// Some rank logged a step of epoch ≥ `epoch` at or after `step`; false after 120 s.
bool wait_for_step(const fs::path& samples, int64_t epoch, int64_t step) {
  for (int i = 0; i < 6000; ++i) {
    std::error_code ec;
    for (const auto& file : fs::directory_iterator(samples, ec)) {
      std::ifstream in(file.path());
      for (int64_t e, s; in >> e >> s;) {
        if (e > epoch || (e == epoch && s >= step)) return true;
        in.ignore(1 << 20, '\n');
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(ShardedTraining, PreemptedMidEpochResumesBitIdentical) {
  testing::TempDir dir;
  write_colour_folder(dir / "folder", 40);
  auto env = [&](const fs::path& samples, bool slow) {
    fs::create_directories(samples);
    return "env DDPIPE_TEST_SAMPLE_LOG=" + samples.string() +
           (slow ? " DDPIPE_TEST_SLOW_RANK=1:0.3 " : " ") + testing::ddpipe_binary();
  };
  auto sharded_job = [&](const std::string& store) {
    return job(dir / store, dir / "folder", "sharded", (dir / store / "store").string()) +
           " --set deterministic=true --epochs 3";
  };
  const auto ref = run_command(env(dir / "ref-samples", false) + " run" + sharded_job("ref"));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;

  const fs::path samples = dir / "samples", log = dir / "preempted.log";
  const pid_t run = testing::start_background(
      env(samples, true) + " run --max-restarts 1" + sharded_job("job"), log);
  ASSERT_TRUE(wait_for_step(samples, 1, 1)) << core::read_file(log);
  const auto ranks = testing::children_of(run);
  ASSERT_EQ(ranks.size(), 2u) << core::read_file(log);
  ASSERT_EQ(kill(ranks[1], SIGTERM), 0);
  ASSERT_EQ(testing::wait_exit(run), 0) << core::read_file(log);
  const std::string output = core::read_file(log);
  int64_t stops = 0;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("msg", "").rfind("preempted: stopping", 0))
      continue;
    ++stops;
    EXPECT_GT(j["step"].get<int64_t>(), 0) << "not mid-epoch: " << line;
  }
  EXPECT_EQ(stops, 2) << output;
  EXPECT_NE(output.find("resuming from checkpoint"), std::string::npos) << output;

  const model::ModelSpec spec{"resnet-mini", 3, 4, 8};
  auto a = testing::published_state(dir / "ref" / "store", "colours", spec);
  auto b = testing::published_state(dir / "job" / "store", "colours", spec);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 0u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
}

}  // namespace
}  // namespace ddpipe
