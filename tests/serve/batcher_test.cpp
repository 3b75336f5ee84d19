// Dynamic batching: results equal unbatched inference, batches form and never mix versions.
#include "serve/batcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>

#include "core/error.h"
#include "data/image.h"
#include "fixtures.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::serve {
namespace {

using Clock = std::chrono::steady_clock;

ModelPtr load(storage::Store& store, const std::string& name, const std::string& version) {
  return std::make_shared<eval::LoadedModel>(eval::load_model(store, name, version));
}

// Images of assorted sizes and colour modes, as an upload would decode them.
std::vector<data::Image> images(int count) {
  std::vector<data::Image> out;
  for (int i = 0; i < count; ++i) {
    const int64_t c = i % 2 ? 3 : 1, h = 20 + i, w = 40 - i;
    out.push_back({c, h, w, fixtures::random_pixels(static_cast<size_t>(c * h * w), 100 + i)});
  }
  return out;
}

std::vector<float> input(const eval::LoadedModel& m, const data::Image& image) {
  std::vector<float> in(static_cast<size_t>(m.channels * m.height * m.width));
  eval::preprocess(m, image, in.data());
  return in;
}

struct Case {
  fixtures::ModelShape shape;
  const char* label;
};

class BatchedEqualsUnbatched : public ::testing::TestWithParam<Case> {};

TEST_P(BatchedEqualsUnbatched, SameClassesAndProbabilities) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  const std::string v = fixtures::publish_model(store, "m", 7, GetParam().shape);
  ModelPtr m = load(store, "m", v);
  const auto imgs = images(24);

  std::vector<eval::Prediction> alone;
  for (const auto& img : imgs) alone.push_back(eval::predict(*m, {img}).at(0));

  std::mutex mu;
  std::vector<int64_t> sizes;
  std::vector<std::vector<float>> inputs;
  for (const auto& img : imgs) inputs.push_back(input(*m, img));
  Batcher batcher({8, 5000.0, 1024}, [&](int64_t n) {
    std::lock_guard<std::mutex> lock(mu);
    sizes.push_back(n);
  });
  std::vector<std::future<Batcher::Result>> futures;
  for (auto& in : inputs) futures.push_back(batcher.submit(m, std::move(in), 1));
  for (size_t i = 0; i < imgs.size(); ++i) {
    const eval::Prediction p = futures[i].get().at(0);
    EXPECT_EQ(p.class_index, alone[i].class_index) << i;
    EXPECT_EQ(p.label, alone[i].label) << i;
    ASSERT_EQ(p.probabilities.size(), alone[i].probabilities.size());
    for (size_t k = 0; k < p.probabilities.size(); ++k) {
      EXPECT_EQ(p.probabilities[k], alone[i].probabilities[k]) << "image " << i << " class " << k;
    }
  }
  batcher.stop();
  EXPECT_EQ(sizes, (std::vector<int64_t>{8, 8, 8})) << "24 inputs queued at once, max_batch 8";
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, BatchedEqualsUnbatched,
    ::testing::Values(Case{{"resnet-mini", 1, 28, 28, 10, 8, true}, "mini_nhwc"},
                      Case{{"resnet-mini", 3, 32, 32, 10, 8, false}, "mini_rgb_nchw"},
                      Case{{"resnet18", 1, 28, 28, 10, 8, true}, "resnet18_nhwc"}),
    [](const auto& info) { return std::string(info.param.label); });

TEST(Batcher, FullBatchRunsAtOnceLoneInputAfterTheDelayOrWhenHurried) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  ModelPtr m = load(store, "m", fixtures::publish_model(store, "m", 1));
  const auto img = images(1)[0];
  {
    Batcher batcher({4, 10000.0, 1024});
    const auto t0 = Clock::now();
    std::vector<std::future<Batcher::Result>> f;
    for (int i = 0; i < 4; ++i) f.push_back(batcher.submit(m, input(*m, img), 1));
    for (auto& x : f) x.get();
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 5.0)
        << "a full batch must not wait for max_delay_ms";
  }
  Batcher batcher({4, 100.0, 1024});
  const auto t0 = Clock::now();
  batcher.submit(m, input(*m, img), 1).get();
  EXPECT_GE(std::chrono::duration<double>(Clock::now() - t0).count(), 0.09);

  // Draining: queued inputs stop waiting for company.
  Batcher draining({4, 60000.0, 1024});
  auto waiting = draining.submit(m, input(*m, img), 1);
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  draining.hurry();
  EXPECT_EQ(waiting.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(draining.submit(m, input(*m, img), 1).get().size(), 1u) << "hurry() still accepts";
}

TEST(Batcher, NeverMixesModelVersions) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  ModelPtr a = load(store, "m", fixtures::publish_model(store, "m", 1));
  ModelPtr b = load(store, "m", fixtures::publish_model(store, "m", 2));
  const auto imgs = images(6);
  std::vector<std::vector<float>> inputs;
  for (size_t i = 0; i < imgs.size(); ++i)
    inputs.push_back(input(i < 2 || i == 5 ? *a : *b, imgs[i]));
  std::vector<int64_t> sizes;
  Batcher batcher({8, 1000.0, 1024}, [&](int64_t n) { sizes.push_back(n); });
  std::vector<std::future<Batcher::Result>> f;
  for (size_t i = 0; i < imgs.size(); ++i) {
    const ModelPtr& m = i < 2 || i == 5 ? a : b;  // a a b b b a
    f.push_back(batcher.submit(m, std::move(inputs[i]), 1));
  }
  for (size_t i = 0; i < imgs.size(); ++i) {
    const ModelPtr& m = i < 2 || i == 5 ? a : b;
    EXPECT_EQ(f[i].get().at(0).probabilities, eval::predict(*m, {imgs[i]}).at(0).probabilities)
        << i;
  }
  batcher.stop();
  EXPECT_EQ(sizes, (std::vector<int64_t>{2, 3, 1}));
}

TEST(Batcher, MultiInputRequestsAndQueueLimit) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  ModelPtr m = load(store, "m", fixtures::publish_model(store, "m", 3));
  const auto imgs = images(3);
  std::vector<float> three;
  for (const auto& img : imgs) {
    auto in = input(*m, img);
    three.insert(three.end(), in.begin(), in.end());
  }
  {
    // A request larger than max_batch runs alone, and in one piece, without waiting.
    Batcher small({2, 60000.0, 4});
    const auto preds = small.submit(m, three, 3).get();
    ASSERT_EQ(preds.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(preds[i].class_index, eval::predict(*m, {imgs[i]})[0].class_index);
    }
  }
  Batcher batcher({100, 60000.0, 4});
  auto first = batcher.submit(m, three, 3);  // 3 of 4 queue slots, waits a minute for company
  try {
    batcher.submit(m, three, 3);
    FAIL() << "queue limit not enforced";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kRetryable);
    EXPECT_NE(std::string(e.what()).find("serve.max_queue"), std::string::npos) << e.what();
  }
  EXPECT_EQ(batcher.queue_depth(), 3);
  try {
    batcher.submit(m, std::vector<float>(5), 1);
    FAIL() << "wrong input size accepted";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kUsage);
  }
  batcher.stop();  // runs what is queued instead of waiting a minute
  EXPECT_EQ(first.get().size(), 3u);
  try {
    batcher.submit(m, input(*m, imgs[0]), 1);
    FAIL() << "accepted after stop";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kRetryable);
  }
}

}  // namespace
}  // namespace ddpipe::serve
