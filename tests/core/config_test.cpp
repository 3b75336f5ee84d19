#include "core/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"

namespace ddpipe::core {
namespace {

// model.arch's values belong to the model component (tests/model checks the real list); here a
// stand-in list checks that core validates the choices it is given.
const ConfigChoices kArchChoices = {{"model.arch", {"resnet-mini", "resnet18", "resnet18-cifar"}}};

std::string usage_error(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  try {
    config_from_yaml(yaml, sets, kArchChoices);
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
  EXPECT_NE(
      usage_error("", {"train.epochs"}).find("--set train.epochs: expected section.key=value"),
      std::string::npos);
  EXPECT_NE(usage_error("train: 3\n").find("train: expected a mapping of keys"), std::string::npos);
  EXPECT_NE(usage_error("", {"deterministic=maybe"}).find("expected true or false"),
            std::string::npos);
}

// Found by tests/core/fuzz: a key that is a YAML list or mapping made yaml-cpp throw
// YAML::TypedBadConversion out of config_from_yaml (a crash of any command given the file).
TEST(Config, AKeyThatIsNotANameIsAUsageError) {
  EXPECT_NE(usage_error("? [a, b]\n: 1\n").find("the top level: a key must be a name"),
            std::string::npos);
  EXPECT_NE(usage_error("train:\n  {lr: 1}: 2\n  epochs: 0\n").find("train: a key must be a name"),
            std::string::npos);
}

TEST(Config, FindConfigTakesAFileOrTheNameOfAShippedOne) {
  testing::TempDir dir;
  const fs::path shipped = dir / "share" / "configs";
  write_file_atomic(shipped / "small.yaml", "name: small\n");
  write_file_atomic(shipped / "big.yaml", "name: big\n");
  write_file_atomic(dir / "mine.yaml", "name: mine\n");
  const std::vector<fs::path> dirs{dir / "absent", shipped};
  EXPECT_EQ(find_config((dir / "mine.yaml").string(), dirs), (dir / "mine.yaml").string());
  EXPECT_EQ(find_config("small", dirs), (shipped / "small.yaml").string());
  EXPECT_EQ(find_config("big.yaml", dirs), (shipped / "big.yaml").string());
  EXPECT_EQ(find_config("sub/other.yaml", dirs),
            "sub/other.yaml");           // load_config says it is missing
  EXPECT_EQ(find_config("", dirs), "");  // `--config ""`: the defaults
  EXPECT_EQ(testing::usage_error([&] { find_config("nope", dirs); }),
            "config nope: no such file, and no shipped config of that name (shipped: big, small)");
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

// configs/imagenet-resnet18.yaml is torchvision's ImageNet reference recipe for ResNet-18.
TEST(Config, ImageNetConfigIsTorchvisionsResNet18Recipe) {
  const Config c = load_config(std::string(DDPIPE_SOURCE_DIR) + "/configs/imagenet-resnet18.yaml",
                               {}, kArchChoices);
  EXPECT_EQ(c.data.format, "image-folder");
  EXPECT_EQ(c.data.form, "sharded");
  EXPECT_EQ(c.data.channels, 3);
  EXPECT_EQ(c.features.image_size, 224);
  EXPECT_DOUBLE_EQ(c.features.crop_scale_min, 0.08);
  EXPECT_TRUE(c.features.horizontal_flip);
  EXPECT_FALSE(c.features.random_crop);
  EXPECT_TRUE(c.features.normalize);
  EXPECT_EQ(c.model.arch, "resnet18");
  EXPECT_EQ(c.train.epochs, 90);
  EXPECT_DOUBLE_EQ(c.train.lr * 256.0 / static_cast<double>(c.dist.nproc * c.train.batch_size),
                   0.1);
  EXPECT_DOUBLE_EQ(c.train.momentum, 0.9);
  EXPECT_DOUBLE_EQ(c.train.weight_decay, 1e-4);
  EXPECT_FALSE(c.train.nesterov);
  EXPECT_DOUBLE_EQ(c.train.label_smoothing, 0.0);
  EXPECT_EQ(c.train.scheduler, "step");
  EXPECT_EQ(c.train.lr_step_size, 30);
  EXPECT_DOUBLE_EQ(c.train.lr_gamma, 0.1);
  EXPECT_DOUBLE_EQ(c.train.warmup_epochs, 0.0);
  EXPECT_EQ(c.train.grad_accum, 1);
}

TEST(Config, S3SecretsAreRedactedEverywhere) {
  const std::string secret = "s3cr3t/Value+xyz";
  Config c = config_from_yaml("s3:\n  secret_access_key: " + secret + "\n  access_key_id: AKID\n",
                              {"s3.session_token=tok-123", "s3.part_size_mb=32"});
  EXPECT_EQ(c.s3.secret_access_key, secret);
  EXPECT_EQ(c.s3.session_token, "tok-123");
  EXPECT_EQ(c.s3.part_size_mb, 32);
  std::string yaml = to_yaml(c);
  EXPECT_EQ(yaml.find(secret), std::string::npos) << yaml;
  EXPECT_EQ(yaml.find("tok-123"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("secret_access_key: <redacted>"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("access_key_id: AKID"), std::string::npos) << yaml;  // not a secret
  // A redacted config read back (a manifest's) falls back to the environment.
  Config back = config_from_yaml(yaml);
  EXPECT_EQ(back.s3.secret_access_key, "");
  EXPECT_EQ(back.s3.part_size_mb, 32);
  EXPECT_NE(to_yaml(Config{}).find("secret_access_key: \"\""), std::string::npos);
  // A secret that is not valid YAML is not echoed in the error.
  std::string m = usage_error("", {"s3.secret_access_key=[" + secret});
  EXPECT_NE(m.find("--set s3.secret_access_key=<redacted>: value is not valid YAML"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find(secret), std::string::npos) << m;
}

TEST(Config, S3ValuesAreChecked) {
  std::string m = usage_error("", {"s3.endpoint=minio:9000", "s3.part_size_mb=4",
                                   "s3.parallel_parts=0", "s3.timeout_s=0.5"});
  EXPECT_NE(m.find("4 problems"), std::string::npos) << m;
  EXPECT_NE(m.find("s3.endpoint: expected http://host[:port] or https://host[:port], got "
                   "'minio:9000'"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("s3.part_size_mb: must be between 5 and 5120, got 4"), std::string::npos) << m;
}

TEST(Config, RecordsWhichKeysWereSetExplicitly) {
  Config c = config_from_yaml("train:\n  epochs: 9\n", {"dist.nproc=2", "seed=1"});
  // Set to its default value is still set.
  EXPECT_TRUE(c.is_set("train.epochs"));
  EXPECT_TRUE(c.is_set("dist.nproc"));
  EXPECT_TRUE(c.is_set("seed"));
  EXPECT_FALSE(c.is_set("train.lr"));
  EXPECT_EQ(c.explicit_keys.size(), 3u);
  EXPECT_TRUE(config_from_yaml("").explicit_keys.empty());
}

TEST(Config, ReferenceListsEveryKeyWithItsDocs) {
  auto keys = config_reference(kArchChoices);
  // 83 + model.init_from, model.init_skip, checkpoint.keep_last, registry.promote.*,
  // data.form, data.shard_mb, data.cache_gb, data.shuffle_buffer
  EXPECT_EQ(keys.size(), 109u);
  std::set<std::string> seen;
  for (const auto& k : keys) {
    EXPECT_TRUE(seen.insert(k.key).second) << k.key;
    EXPECT_FALSE(k.help.empty()) << k.key << " has no help";
    EXPECT_FALSE(k.type.empty()) << k.key;
  }
  auto find = [&](const std::string& key) {
    return *std::find_if(keys.begin(), keys.end(), [&](auto& k) { return k.key == key; });
  };
  EXPECT_EQ(find("train.epochs").default_value, "9");
  EXPECT_EQ(find("train.batch_size").allowed, "1–65536");
  EXPECT_EQ(find("seed").allowed, "≥ 0");
  EXPECT_EQ(find("model.arch").allowed, "`resnet-mini`, `resnet18`, `resnet18-cifar`");
  EXPECT_EQ(find("train.scheduler").allowed, "`cosine`, `none`, `step`");
  EXPECT_TRUE(find("s3.secret_access_key").secret);
}

// The one list-valued key, model.init_skip: YAML lists in a file or --set, "" clears
// it, `config show` prints it back in a form that reads back the same.
TEST(Config, StringListField) {
  Config c = config_from_yaml("model:\n  init_from: w.pth\n  init_skip: [fc, layer4.1]\n");
  EXPECT_EQ(c.model.init_from, "w.pth");
  EXPECT_EQ(c.model.init_skip, (std::vector<std::string>{"fc", "layer4.1"}));
  EXPECT_EQ(
      config_from_yaml("model:\n  init_from: w.pth\n  init_skip:\n    - fc\n").model.init_skip,
      std::vector<std::string>{"fc"});
  EXPECT_EQ(config_from_yaml("", {"model.init_from=w.pth", "model.init_skip=[fc]"}).model.init_skip,
            std::vector<std::string>{"fc"});
  EXPECT_TRUE(
      config_from_yaml("", {"model.init_skip=[fc]", "model.init_skip="}).model.init_skip.empty());
  EXPECT_TRUE(Config{}.model.init_skip.empty());
  const std::string yaml = to_yaml(c);
  EXPECT_NE(yaml.find("init_skip: [fc, layer4.1]"), std::string::npos) << yaml;
  EXPECT_NE(to_yaml(Config{}).find("init_skip: []"), std::string::npos);
  EXPECT_EQ(config_from_yaml(yaml).model.init_skip, c.model.init_skip);
  std::string m = usage_error("model:\n  init_skip: fc\n");
  EXPECT_NE(m.find("model.init_skip: expected a list of strings like [a, b], got 'fc'"),
            std::string::npos)
      << m;
  m = usage_error("", {"model.init_skip=[fc, [x]]"});
  EXPECT_NE(m.find("model.init_skip: expected a list of non-empty strings"), std::string::npos)
      << m;
  m = usage_error("", {"model.init_skip=[fc]"});
  EXPECT_NE(m.find("model.init_skip: applies to the weights of model.init_from"), std::string::npos)
      << m;
  bool listed = false;
  for (const auto& k : config_reference()) {
    if (k.key == "model.init_skip") listed = k.type == "list of strings" && k.default_value == "[]";
  }
  EXPECT_TRUE(listed);
}

}  // namespace
}  // namespace ddpipe::core
