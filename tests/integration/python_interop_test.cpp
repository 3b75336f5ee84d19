// ddpipe's models as PyTorch artifacts, checked with Python's torch and torchvision
// (tests/integration/python_interop.py): a version's model.pth loads into torchvision and
// classifies like `ddpipe predict`, model.safetensors holds the same tensors, a torchvision
// state dict initialises training (model.init_from, init_skip), and `models export` serves
// versions that only have model.pt. Fails when python3-torch or python3-torchvision is missing.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "model/export.h"
#include "model/model.h"
#include "storage/local_store.h"
#include "test_util.h"
#include "train/init_from.h"

namespace ddpipe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::run_command;

const std::string kPython =
    "/usr/bin/python3 " DDPIPE_SOURCE_DIR "/tests/integration/python_interop.py ";

bool torchvision_available() {
  static const bool ok =
      run_command("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1").exit_code == 0;
  return ok;
}

// scripts/install-deps.sh --tests installs both: their absence is a broken set-up, not a skip.
#define REQUIRE_TORCHVISION()                                                                \
  if (!torchvision_available())                                                              \
  FAIL() << "/usr/bin/python3 cannot import torch and torchvision (scripts/install-deps.sh " \
            "--tests installs python3-torch and python3-torchvision)"

// A short run of ddpipe's resnet18 on synthetic 3-channel 32×32 images (200 test images), with a
// small learning rate: BatchNorm statistics move, probabilities stay far from 0 and 1.
std::string r18_job(const fs::path& dir, const std::string& extra = "") {
  return testing::ddpipe_binary() + " run --store " + (dir / "store").string() +
         " --set cache_dir=" + (dir / "cache").string() +
         " --set name=r18 --set data.format=synthetic --set data.name=syn3"
         " --set data.channels=3 --set data.height=32 --set data.width=32"
         " --set data.train_size=64 --set data.test_size=200 --set data.classes=10"
         " --arch resnet18 --set train.batch_size=16 --set train.max_steps_per_epoch=3"
         " --epochs 1 --lr 0.005 --set dist.nproc=1 --set train.threads=2 " +
         extra;
}

std::vector<fs::path> subdirs(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().rfind(prefix, 0) == 0) {
      out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '{') out.push_back(json::parse(line));
  }
  return out;
}

// One trained version shared by the tests of the suite.
class PythonInterop : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!torchvision_available()) return;
    dir_ = new testing::TempDir();
    auto r = run_command(r18_job(dir_->path()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    version_ = subdirs(dir_->path() / "store/models/r18", "model_v").at(0);
    dataset_ = subdirs(dir_->path() / "store/datasets/syn3", "").at(0);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    REQUIRE_TORCHVISION();
    ASSERT_FALSE(version_.empty()) << "the shared training run failed";
  }

  static testing::TempDir* dir_;
  static fs::path version_, dataset_;
};
testing::TempDir* PythonInterop::dir_ = nullptr;
fs::path PythonInterop::version_, PythonInterop::dataset_;

// The first `n` test images of `dataset` as PNG files, classified by torchvision from the
// version's model.pth (python_interop.py classify, the README's recipe) and by `ddpipe predict`:
// the same classes, probabilities within 1e-4.
void expect_python_classifies_like_predict(const fs::path& work, const fs::path& store,
                                           const std::string& model, const fs::path& version,
                                           const fs::path& dataset, int n) {
  const fs::path pngs = work / ("pngs-" + model);
  auto w = run_command(kPython + "pngs " + dataset.string() + " " + pngs.string() + " " +
                       std::to_string(n));
  ASSERT_EQ(w.exit_code, 0) << w.output;
  std::string files;
  for (int i = 0; i < n; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "%04d.png", i);
    files += " " + (pngs / name).string();
  }
  auto py = run_command(kPython + "classify " + version.string() + files + " 2>&1");
  ASSERT_EQ(py.exit_code, 0) << py.output;
  auto ours = run_command(testing::ddpipe_binary() + " predict --store " + store.string() +
                          " --model " + model + " --top-k 1000" + files + " 2>/dev/null");
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  auto theirs = json_lines(py.output), mine = json_lines(ours.output);
  ASSERT_EQ(theirs.size(), static_cast<size_t>(n)) << py.output;
  ASSERT_EQ(mine.size(), static_cast<size_t>(n)) << ours.output;
  std::set<int64_t> classes;
  double max_diff = 0.0;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(theirs[i]["file"], mine[i]["file"]);
    EXPECT_EQ(theirs[i]["class_index"], mine[i]["class_index"]) << mine[i]["file"];
    classes.insert(mine[i]["class_index"].get<int64_t>());
    ASSERT_EQ(mine[i]["top_k"].size(), theirs[i]["probabilities"].size());
    for (const auto& top : mine[i]["top_k"]) {  // synthetic labels are the class indices
      const double p = theirs[i]["probabilities"][std::stoi(top["class"].get<std::string>())];
      max_diff = std::max(max_diff, std::abs(p - top["probability"].get<double>()));
    }
  }
  EXPECT_LT(max_diff, 1e-4);
  EXPECT_GT(classes.size(), 1u) << "a degenerate model would compare nothing";
  std::cout << model << ": " << n << " images, largest probability difference " << max_diff << "\n";
}

TEST_F(PythonInterop, TorchvisionLoadsModelPthAndClassifiesLikePredict) {
  expect_python_classifies_like_predict(dir_->path(), dir_->path() / "store", "r18", version_,
                                        dataset_, 200);
}

// The README's stem changes: resnet18-cifar (3×3 stride-1 conv1, no max-pool) on 1-channel data.
TEST_F(PythonInterop, CifarStemAndOneChannelAsTheReadmeSays) {
  testing::TempDir dir;
  auto r = run_command(r18_job(dir.path(),
                               "--set name=c1 --arch resnet18-cifar "
                               "--set data.name=syn1 --set data.channels=1 "
                               "--set data.height=28 --set data.width=28"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_python_classifies_like_predict(dir.path(), dir / "store", "c1",
                                        subdirs(dir / "store/models/c1", "model_v").at(0),
                                        subdirs(dir / "store/datasets/syn1", "").at(0), 50);
}

TEST_F(PythonInterop, SafetensorsHoldsTheTensorsOfModelPth) {
  auto r = run_command(kPython + "safetensors " + version_.string() + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json out = json_lines(r.output).at(0);
  EXPECT_EQ(out["tensors"], 122);  // 62 parameters + 60 BatchNorm buffers
  EXPECT_EQ(out["metadata"]["arch"], "resnet18");
  // And the C++ readers agree with each other and with model.pt.
  auto pth = model::read_pth(core::read_file(version_ / "model.pth"), "model.pth");
  auto st = model::read_safetensors(core::read_file(version_ / "model.safetensors"), "st");
  auto net = model::make_model({"resnet18", 3, 10, 0});
  model::load_state(*net, core::read_file(version_ / "model.pt"), "model.pt");
  const model::StateDict pt = model::state_dict(*net);
  ASSERT_EQ(pth.size(), pt.size());
  ASSERT_EQ(st.size(), pt.size());
  for (size_t i = 0; i < pt.size(); ++i) {
    EXPECT_EQ(pth[i].first, pt[i].first);
    EXPECT_TRUE(torch::equal(pth[i].second, pt[i].second)) << pt[i].first;
    EXPECT_TRUE(torch::equal(st[i].second, pt[i].second)) << pt[i].first;
  }
  const json manifest = json::parse(core::read_file(version_ / "manifest.json"));
  EXPECT_TRUE(manifest["files"].contains("model.pth")) << manifest.dump();
  EXPECT_TRUE(manifest["files"].contains("model.safetensors"));
}

// Python saves a torchvision state dict (an OrderedDict with _metadata); init_from_state_dict,
// what `ddpipe train` calls on a fresh model, loads it into a channels-last resnet18 whose
// eval-mode forward then equals torchvision's — from a local file and from a store key.
TEST_F(PythonInterop, InitFromTorchvisionGivesTorchvisionsForward) {
  const fs::path saved = dir_->path() / "tv.pth";
  auto r = run_command(kPython + "save-resnet18 " + saved.string() + " 10 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto batch = model::read_pth(core::read_file(saved.string() + ".batch.pth"), "batch");
  ASSERT_EQ(batch.size(), 2u);
  const torch::Tensor input = batch[0].second, logits = batch[1].second;
  storage::LocalStore store(dir_->path() / "init-store");
  store.put("weights/tv.pth", core::read_file(saved));
  // The same seed and weights pickled with protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE).
  const fs::path saved4 = dir_->path() / "tv4.pth";
  auto r4 = run_command(kPython + "save-resnet18 " + saved4.string() + " 10 --protocol 4 2>&1");
  ASSERT_EQ(r4.exit_code, 0) << r4.output;
  for (const std::string& from : {saved.string(), std::string("weights/tv.pth"), saved4.string()}) {
    core::Config config = core::config_from_yaml("", {"model.init_from=" + from});
    torch::manual_seed(1);
    auto net = model::make_model({"resnet18", 3, 10, 0});
    model::to_channels_last(*net);
    train::init_from_state_dict(*net, config, store);
    net->eval();
    torch::NoGradGuard no_grad;
    auto ours = net->forward(input.contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_LT((ours - logits).abs().max().item<float>(), 1e-4) << from;
  }
  core::Config missing = core::config_from_yaml("", {"model.init_from=nowhere/w.pth"});
  try {
    train::read_init_weights(missing, store);
    ADD_FAILURE() << "no error";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("nowhere/w.pth"), std::string::npos) << e.what();
  }
}

// Through `ddpipe run`: a mismatched state dict stops the job before training (no checkpoint,
// no version), naming every offending tensor; init_skip [fc] takes another class count.
TEST_F(PythonInterop, RunWithInitFromChecksNamesAndShapesFirst) {
  const fs::path tv = dir_->path() / "tv10.pth", renamed = dir_->path() / "renamed.pth";
  ASSERT_EQ(run_command(kPython + "save-resnet18 " + tv.string() + " 10").exit_code, 0);
  ASSERT_EQ(run_command(kPython + "save-resnet18 " + renamed.string() +
                        " 10 --rename conv1.weight=stem.weight")
                .exit_code,
            0);
  testing::TempDir run_dir;
  const std::string four = "--set data.classes=4 --set name=ft ";
  auto wrong = run_command(r18_job(run_dir.path(), four + "--set model.init_from=" + tv.string()));
  EXPECT_EQ(wrong.exit_code, core::exit_code(core::ErrorKind::kData)) << wrong.output;
  EXPECT_NE(wrong.output.find("tensor 'fc.weight': shape [10, 512] in the file, the model "
                              "expects [4, 512]"),
            std::string::npos)
      << wrong.output;
  EXPECT_NE(wrong.output.find("tensor 'fc.bias'"), std::string::npos) << wrong.output;
  EXPECT_FALSE(fs::exists(run_dir / "store/models/ft/checkpoints")) << wrong.output;
  EXPECT_TRUE(subdirs(run_dir / "store/models/ft", "model_v").empty());

  auto bad_name = run_command(
      r18_job(run_dir.path(), "--set name=rn --set model.init_from=" + renamed.string()));
  EXPECT_NE(bad_name.exit_code, 0);
  EXPECT_NE(bad_name.output.find("unexpected tensor 'stem.weight'"), std::string::npos)
      << bad_name.output;
  EXPECT_NE(bad_name.output.find("missing tensor 'conv1.weight'"), std::string::npos);
  EXPECT_TRUE(subdirs(run_dir / "store/models/rn", "model_v").empty());

  auto skip = run_command(r18_job(run_dir.path(), four + "--set model.init_from=" + tv.string() +
                                                      " --set model.init_skip=[fc]"));
  ASSERT_EQ(skip.exit_code, 0) << skip.output;
  EXPECT_NE(skip.output.find("initialised the model from a state dict"), std::string::npos)
      << skip.output;
  EXPECT_EQ(subdirs(run_dir / "store/models/ft", "model_v").size(), 1u);

  // Resuming continues from the checkpoint: init_from (here one that would not fit) is unused.
  auto resumed = run_command(r18_job(run_dir.path(), four +
                                                         "--epochs 2 --resume "
                                                         "--set model.init_from=" +
                                                         renamed.string()));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from checkpoint"), std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("initialised the model"), std::string::npos) << resumed.output;
}

// A version published before model.pth existed: only model.pt (and its manifest).
TEST_F(PythonInterop, ExportOfAVersionWithOnlyModelPt) {
  testing::TempDir old;
  fs::copy(dir_->path() / "store", old / "store", fs::copy_options::recursive);
  const fs::path v = old / "store/models/r18" / version_.filename();
  fs::remove(v / "model.pth");
  fs::remove(v / "model.safetensors");
  const std::string cmd =
      testing::ddpipe_binary() + " models export --store " + (old / "store").string() + " r18 ";
  auto pth = run_command(cmd + "--format pth --out " + (old / "r18.pth").string() + " 2>&1");
  ASSERT_EQ(pth.exit_code, 0) << pth.output;
  EXPECT_EQ(json_lines(pth.output).at(0)["version"], version_.filename().string());
  auto st = run_command(cmd + "latest --format safetensors --out " +
                        (old / "r18.safetensors").string() + " 2>&1");
  ASSERT_EQ(st.exit_code, 0) << st.output;
  auto py = run_command(kPython + "load " + (old / "r18.pth").string() + " 10 2>&1");
  ASSERT_EQ(py.exit_code, 0) << py.output;
  EXPECT_EQ(json_lines(py.output).at(0)["tensors"], 122);
  // The same tensors as the version's own model.pth.
  auto original = model::read_pth(core::read_file(version_ / "model.pth"), "original");
  auto exported = model::read_pth(core::read_file(old / "r18.pth"), "exported");
  auto exported_st = model::read_safetensors(core::read_file(old / "r18.safetensors"), "st");
  ASSERT_EQ(exported.size(), original.size());
  for (size_t i = 0; i < original.size(); ++i) {
    EXPECT_TRUE(torch::equal(exported[i].second, original[i].second)) << original[i].first;
    EXPECT_TRUE(torch::equal(exported_st[i].second, original[i].second)) << original[i].first;
  }
  auto bad = run_command(cmd + "--format onnx --out x 2>&1");
  EXPECT_EQ(bad.exit_code, core::exit_code(core::ErrorKind::kUsage)) << bad.output;
  EXPECT_NE(bad.output.find("--format must be pth or safetensors, got 'onnx'"), std::string::npos)
      << bad.output;
}

}  // namespace
}  // namespace ddpipe
