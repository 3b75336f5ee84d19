// configs/imagenet-resnet18.yaml end to end with the real binary: a small generated folder in
// ImageNet's layout (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG after the valprep script, images of
// varied sizes) goes through `ddpipe run --config configs/imagenet-resnet18.yaml --data-path
// DIR`, with overrides that only make it small (image size, steps, batch, epochs): it ingests
// shards, trains ResNet-18, evaluates on val/ and publishes a version whose manifest records the
// recipe.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "core/config.h"
#include "core/fs.h"
#include "fixtures.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe {
namespace {

namespace fs = std::filesystem;
using testing::run_command;

const std::vector<std::string> kWnids = {"n01440764", "n01443537", "n01484850"};

// DIR/train/<wnid>/<wnid>_<n>.JPEG and DIR/val/<wnid>/ILSVRC2012_val_<n>.JPEG: JPEG files of a
// base colour a class with noise, 48 to 111 pixels a side.
void write_imagenet_folder(const fs::path& root, int train, int val) {
  std::mt19937 rng(5);
  int val_number = 1;
  for (size_t c = 0; c < kWnids.size(); ++c) {
    for (int i = 0; i < train + val; ++i) {
      const int w = 48 + static_cast<int>(rng() % 64), h = 48 + static_cast<int>(rng() % 64);
      std::vector<uint8_t> px(static_cast<size_t>(w * h * 3));
      for (size_t k = 0; k < px.size(); ++k) {
        const int base = (k % 3 == c) ? 200 : 50;
        px[k] =
            static_cast<uint8_t>(std::clamp<int>(base + static_cast<int>(rng() % 81) - 40, 0, 255));
      }
      char val_name[40];
      std::snprintf(val_name, sizeof val_name, "ILSVRC2012_val_%08d.JPEG", val_number);
      const fs::path file =
          i < train ? root / "train" / kWnids[c] / (kWnids[c] + "_" + std::to_string(i) + ".JPEG")
                    : root / "val" / kWnids[c] / val_name;
      if (i >= train) ++val_number;
      testing::write_bytes(file, testing::encode_jpeg(w, h, 3, px, 90));
    }
  }
}

TEST(ImageNetConfig, RunsOnAFolderInImageNetsLayoutAndRecordsTheRecipe) {
  testing::TempDir dir;
  write_imagenet_folder(dir / "imagenet", 16, 4);
  const std::string config = std::string(DDPIPE_SOURCE_DIR) + "/configs/imagenet-resnet18.yaml";
  const auto r = run_command(
      testing::ddpipe_binary() + " run --config " + config + " --data-path " +
      (dir / "imagenet").string() + " --store " + (dir / "store").string() +
      " --set cache_dir=" + (dir / "cache").string() +
      // Only smaller: 32-pixel crops, 2 steps of 2 × 4 images, 1 epoch, 1 loader thread.
      " --set features.image_size=32 --set train.batch_size=4 --set train.eval_batch_size=8"
      " --set train.max_steps_per_epoch=2 --set train.threads=1 --set loader.workers=1"
      " --epochs 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // Ingested: shards of the original JPEG bytes, val/ as the test split.
  storage::LocalStore store(dir / "store");
  std::string digest = core::read_file(dir / "store/datasets/imagenet/latest");
  digest.erase(digest.find_last_not_of('\n') + 1);
  const auto index = nlohmann::json::parse(
      core::read_file(dir / "store/datasets/imagenet" / digest / "index.json"));
  EXPECT_EQ(index["classes"], kWnids);
  EXPECT_NE(index["source"]["split"], "seeded") << index["source"];
  EXPECT_EQ(index["splits"]["train"]["samples"], 48);
  EXPECT_EQ(index["splits"]["test"]["samples"], 12);
  EXPECT_FALSE(store.list("datasets/imagenet/shards/").empty());

  // Trained, evaluated on every val image, published with the recipe in its manifest.
  registry::Registry reg(store);
  const std::string v = reg.resolve("imagenet-resnet18", "latest");
  const auto m = reg.manifest_json("imagenet-resnet18", v);
  ASSERT_EQ(m["epochs"].size(), 1u);
  EXPECT_EQ(m["epochs"][0]["test_samples"], 12);
  EXPECT_DOUBLE_EQ(m["epochs"][0]["lr"].get<double>(), 0.1);
  EXPECT_EQ(m["model_spec"]["arch"], "resnet18") << m["model_spec"];
  EXPECT_EQ(m["model_spec"]["num_classes"], 3);
  EXPECT_EQ(m["dataset"]["classes"], kWnids);
  const core::Config recorded = core::config_from_yaml(m["config"].get<std::string>());
  EXPECT_EQ(recorded.data.form, "sharded");
  EXPECT_EQ(recorded.train.scheduler, "step");
  EXPECT_EQ(recorded.train.lr_step_size, 30);
  EXPECT_DOUBLE_EQ(recorded.train.lr_gamma, 0.1);
  EXPECT_DOUBLE_EQ(recorded.train.lr, 0.1);
  EXPECT_DOUBLE_EQ(recorded.train.momentum, 0.9);
  EXPECT_DOUBLE_EQ(recorded.train.weight_decay, 1e-4);
  EXPECT_FALSE(recorded.train.nesterov);
  EXPECT_DOUBLE_EQ(recorded.train.label_smoothing, 0.0);
  EXPECT_DOUBLE_EQ(recorded.features.crop_scale_min, 0.08);
  EXPECT_EQ(recorded.features.image_size, 32);  // the override, recorded as trained
}

}  // namespace
}  // namespace ddpipe
