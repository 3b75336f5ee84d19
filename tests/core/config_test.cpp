#include "core/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"

namespace ddpipe::core {
namespace {

std::string usage_error(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  try {
    config_from_yaml(yaml, sets);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << yaml;
  return "";
}

TEST(Config, DefaultsAreTheDefaultJob) {
  Config c = config_from_yaml("");
  EXPECT_EQ(c.data.format, "idx");
  EXPECT_EQ(c.data.path, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(c.dist.nproc, 2);
  EXPECT_EQ(c.store, "./artifacts");
}

TEST(Config, FileThenOverrides) {
  Config c = config_from_yaml("train:\n  epochs: 3\n  lr: 0.05\nmodel:\n  arch: resnet18\n",
                              {"train.epochs=5", "store=/tmp/x"});
  EXPECT_EQ(c.train.epochs, 5);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.05);
  EXPECT_EQ(c.model.arch, "resnet18");
  EXPECT_EQ(c.store, "/tmp/x");
}

TEST(Config, UnknownKeyNamesKeyAndSuggestion) {
  std::string m = usage_error("train:\n  epoch: 3\n");
  EXPECT_NE(m.find("train.epoch: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'train.epochs'"), std::string::npos) << m;
}

TEST(Config, WrongTypeAndRangeAreAllReported) {
  std::string m = usage_error("train:\n  epochs: ten\n  batch_size: 0\nmodel:\n  arch: vgg\n");
  EXPECT_NE(m.find("3 problems"), std::string::npos) << m;
  EXPECT_NE(m.find("train.epochs: expected an integer, got 'ten'"), std::string::npos) << m;
  EXPECT_NE(m.find("train.batch_size: must be between 1 and 65536, got 0"), std::string::npos) << m;
  EXPECT_NE(m.find("model.arch: must be one of resnet-mini, resnet18, resnet18-cifar, got 'vgg'"),
            std::string::npos)
      << m;
}

TEST(Config, BadOverrideAndSectionMisuse) {
  EXPECT_NE(usage_error("", {"train.epochs"}).find("--set train.epochs: expected section.key=value"),
            std::string::npos);
  EXPECT_NE(usage_error("train: 3\n").find("train: expected a mapping of keys"), std::string::npos);
  EXPECT_NE(usage_error("", {"deterministic=maybe"}).find("expected true or false"), std::string::npos);
}

TEST(Config, MissingFileAndBadYaml) {
  testing::TempDir dir;
  try {
    load_config((dir / "nope.yaml").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.yaml: cannot be read"), std::string::npos);
  }
  write_file_atomic(dir / "bad.yaml", "train: [1, 2\n");
  try {
    load_config((dir / "bad.yaml").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("not valid YAML"), std::string::npos) << e.what();
  }
}

TEST(Config, YamlRoundTrip) {
  Config c = config_from_yaml("", {"train.epochs=7", "model.width=24", "data.format=synthetic"});
  Config back = config_from_yaml(to_yaml(c));
  EXPECT_EQ(to_yaml(back), to_yaml(c));
  EXPECT_EQ(back.train.epochs, 7);
  EXPECT_EQ(back.model.width, 24);
}

TEST(Config, ShippedConfigsAreValidAndDefaultMatchesEmbedded) {
  std::string dir = std::string(DDPIPE_SOURCE_DIR) + "/configs/";
  EXPECT_EQ(to_yaml(load_config(dir + "default.yaml")), to_yaml(Config{}))
      << "configs/default.yaml drifted from the embedded defaults: regenerate it with "
         "`ddpipe config show > configs/default.yaml`";
  Config seed = load_config(dir + "seed-cifar10-resnet18.yaml");
  EXPECT_EQ(seed.model.arch, "resnet18");
  EXPECT_EQ(seed.data.format, "cifar10");
  EXPECT_EQ(seed.train.epochs, 10);
  EXPECT_EQ(seed.train.batch_size, 128);
  EXPECT_EQ(seed.dist.nproc, 2);
}

}  // namespace
}  // namespace ddpipe::core
