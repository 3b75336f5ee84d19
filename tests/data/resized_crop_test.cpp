// The ImageNet transforms against torchvision 0.14 (python3-torchvision): the bilinear resize
// and the evaluation crop numerically, RandomResizedCrop.get_params by its fallback (exactly)
// and by the statistics of its boxes (loosely: the two cannot share a random stream).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "core/fs.h"
#include "data/transforms.h"
#include "fixtures.h"
#include "test_util.h"

namespace ddpipe::data {
namespace {

namespace dt = ddpipe::testing;
using nlohmann::json;

struct RrcImage {
  int64_t c, h, w;
  std::vector<uint8_t> bytes;
  ImageView view() const { return {bytes.data(), c, h, w}; }
};

RrcImage rrc_image(int64_t c, int64_t h, int64_t w, uint32_t seed) {
  RrcImage im{c, h, w, std::vector<uint8_t>(static_cast<size_t>(c * h * w))};
  std::mt19937 gen(seed);
  for (auto& b : im.bytes) b = static_cast<uint8_t>(gen() & 0xff);
  return im;
}

// Runs `script` with /usr/bin/python3 on `input` (JSON), returning its JSON output.
json rrc_python(const std::string& script, const json& input) {
  dt::TempDir tmp;
  dt::write_bytes(tmp / "in.json", input.dump());
  dt::write_bytes(tmp / "t.py", script);
  const auto r = dt::run_command("/usr/bin/python3 " + (tmp / "t.py").string() + " " +
                                 (tmp / "in.json").string() + " " + (tmp / "out.json").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return json();
  return json::parse(core::read_file(tmp / "out.json"));
}

const char* kRrcResizeScript = R"(
import json, sys, torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode
out = []
for c, h, w, data, box, size, resize in json.load(open(sys.argv[1])):
    img = torch.tensor(data, dtype=torch.uint8).reshape(c, h, w).float()  # exact; no rounding
    if box is not None:
        top, left, bh, bw = box
        y = F.resized_crop(img, top, left, bh, bw, [size, size],
                           InterpolationMode.BILINEAR, antialias=False)
    else:
        y = F.center_crop(F.resize(img, resize, InterpolationMode.BILINEAR, antialias=False), size)
    out.append(y.flatten().tolist())
json.dump(out, open(sys.argv[2], "w"))
)";

struct RrcCase {
  RrcImage image;
  std::optional<CropBox> box;  // none: the evaluation transform
  int64_t size, resize;
};

TEST(ResizedCrop, ResizeAndEvalCropEqualTorchvision) {
  if (!dt::python_torch_available()) FAIL() << "/usr/bin/python3 cannot import torch";
  std::vector<RrcCase> cases = {
      {rrc_image(3, 37, 53, 1), CropBox{0, 0, 37, 53}, 24, 0},  // down, whole image
      {rrc_image(3, 37, 53, 2), CropBox{5, 9, 20, 31}, 64, 0},  // up, a crop
      {rrc_image(1, 20, 11, 3), CropBox{3, 2, 17, 9}, 7, 0},    // grey
      {rrc_image(3, 300, 200, 4), CropBox{40, 10, 123, 97}, 224, 0},
      {rrc_image(3, 16, 16, 5), CropBox{0, 0, 1, 1}, 5, 0},  // one pixel
      {rrc_image(3, 300, 200, 6), std::nullopt, 224, 256},   // portrait
      {rrc_image(3, 97, 181, 7), std::nullopt, 56, 64},      // landscape, odd margins
      {rrc_image(1, 40, 40, 8), std::nullopt, 32, 37},
  };
  json input = json::array();
  for (const auto& k : cases) {
    json box = k.box ? json{k.box->top, k.box->left, k.box->height, k.box->width} : json();
    input.push_back({k.image.c, k.image.h, k.image.w, k.image.bytes, box, k.size, k.resize});
  }
  const json expected = rrc_python(kRrcResizeScript, input);
  ASSERT_EQ(expected.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const RrcCase& k = cases[i];
    std::vector<float> out(static_cast<size_t>(k.image.c * k.size * k.size));
    ResizedCrop opts;
    opts.size = k.size;
    opts.normalize = false;
    if (k.box) {
      resize_bilinear(k.image.view(), *k.box, k.size, k.size, out.data());
    } else {
      opts.eval_resize = k.resize;
      resize_center_crop(k.image.view(), opts, out.data());
    }
    const auto want = expected[i].get<std::vector<float>>();
    ASSERT_EQ(want.size(), out.size()) << i;
    // resize_bilinear gives [0, 255]; the transform, without normalisation, [0, 1].
    const float to_bytes = k.box ? 1.0f : 255.0f;
    float worst = 0;
    for (size_t j = 0; j < out.size(); ++j) {
      worst = std::max(worst, std::abs(out[j] * to_bytes - want[j]));
    }
    // Float rounding of values in [0, 255] (PyTorch's vectorised kernel sums in another order).
    EXPECT_LT(worst, 5e-3f) << "case " << i;
  }
}

const char* kRrcParamsScript = R"(
import json, sys, torch
from torchvision.transforms import RandomResizedCrop
torch.manual_seed(0)
out = {"fallback": [], "stats": []}
spec = json.load(open(sys.argv[1]))
for h, w in spec["fallback"]:
    boxes = {RandomResizedCrop.get_params(torch.empty(1, h, w), [0.08, 1.0], [3/4, 4/3])
             for _ in range(20)}
    out["fallback"].append([list(b) for b in boxes])
for h, w, n in spec["stats"]:
    img = torch.empty(1, h, w)
    out["stats"].append([list(RandomResizedCrop.get_params(img, [0.08, 1.0], [3/4, 4/3]))
                         for _ in range(n)])
json.dump(out, open(sys.argv[2], "w"))
)";

// Images too elongated for any attempt: torchvision's central crop, exactly.
TEST(ResizedCrop, FallbackIsTorchvisionsCentralCrop) {
  if (!dt::python_torch_available()) FAIL() << "/usr/bin/python3 cannot import torch";
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{10, 1000}, {1000, 10}, {7, 300},
                                                          {300, 7},   {21, 2001}, {2001, 21}};
  json spec = {{"fallback", json::array()}, {"stats", json::array()}};
  for (auto [h, w] : sizes) spec["fallback"].push_back({h, w});
  const json py = rrc_python(kRrcParamsScript, spec);
  ASSERT_EQ(py["fallback"].size(), sizes.size());
  const ResizedCrop opts;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto [h, w] = sizes[i];
    ASSERT_EQ(py["fallback"][i].size(), 1u)
        << "not deterministic in torchvision: " << h << "x" << w;
    const auto b = py["fallback"][i][0].get<std::vector<int64_t>>();  // i, j, h, w
    for (int64_t sample = 0; sample < 5; ++sample) {
      EXPECT_EQ(random_resized_crop_box(h, w, opts, 3, 1, sample),
                (CropBox{b[0], b[1], b[2], b[3]}))
          << h << "x" << w;
    }
  }
  // After 10 rejected attempts (area and aspect at their largest) a square image is kept whole;
  // a tall one is cut to the ratio's bound, rounded half to even: round(50 / 0.75) = 67.
  int64_t draws = 0;
  auto largest = [&] { return ++draws, 0.999999; };
  EXPECT_EQ(random_resized_crop_box(100, 100, opts, largest), (CropBox{0, 0, 100, 100}));
  EXPECT_EQ(draws, 20);
  EXPECT_EQ(random_resized_crop_box(100, 50, opts, largest), (CropBox{16, 0, 67, 50}));
  // The smallest area and aspect are accepted at once, at the drawn position.
  auto smallest = [] { return 0.0; };
  EXPECT_EQ(random_resized_crop_box(100, 100, opts, smallest), (CropBox{0, 0, 33, 24}));
}

struct RrcStats {
  double area = 0, ratio = 0, top = 0, whole = 0;  // means
};
RrcStats rrc_stats(const std::vector<CropBox>& boxes, int64_t h, int64_t w) {
  RrcStats s;
  for (const CropBox& b : boxes) {
    EXPECT_TRUE(b.top >= 0 && b.left >= 0 && b.top + b.height <= h && b.left + b.width <= w);
    s.area += static_cast<double>(b.height * b.width) / static_cast<double>(h * w);
    s.ratio += std::log(static_cast<double>(b.width) / static_cast<double>(b.height));
    s.top += b.height < h ? static_cast<double>(b.top) / static_cast<double>(h - b.height) : 0.5;
    s.whole += b.height == h && b.width == w;
  }
  const auto n = static_cast<double>(boxes.size());
  return {s.area / n, s.ratio / n, s.top / n, s.whole / n};
}

// The boxes' distribution: our draws vs torchvision's over 4000 samples each.
TEST(ResizedCrop, BoxesAreDistributedAsTorchvisions) {
  if (!dt::python_torch_available()) FAIL() << "/usr/bin/python3 cannot import torch";
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{300, 400}, {64, 64}, {500, 120}};
  const int64_t n = 4000;
  json spec = {{"fallback", json::array()}, {"stats", json::array()}};
  for (auto [h, w] : sizes) spec["stats"].push_back({h, w, n});
  const json py = rrc_python(kRrcParamsScript, spec);
  ASSERT_EQ(py["stats"].size(), sizes.size());
  const ResizedCrop opts;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto [h, w] = sizes[i];
    std::vector<CropBox> ours, theirs;
    for (int64_t s = 0; s < n; ++s) {
      ours.push_back(random_resized_crop_box(h, w, opts, 42, 3, s));
      const auto b = py["stats"][i][static_cast<size_t>(s)].get<std::vector<int64_t>>();
      theirs.push_back({b[0], b[1], b[2], b[3]});
    }
    const RrcStats a = rrc_stats(ours, h, w), b = rrc_stats(theirs, h, w);
    EXPECT_NEAR(a.area, b.area, 0.025) << h << "x" << w;  // ± 0.004 (1σ) each
    EXPECT_NEAR(a.ratio, b.ratio, 0.03) << h << "x" << w;
    EXPECT_NEAR(a.top, b.top, 0.03) << h << "x" << w;
    EXPECT_NEAR(a.whole, b.whole, 0.03) << h << "x" << w;
    EXPECT_GT(a.area, 0.15);  // about half for a square image, less for a narrow one
  }
  // Another epoch or sample, another box; the same (seed, epoch, sample), the same box.
  EXPECT_EQ(random_resized_crop_box(300, 400, opts, 42, 3, 7),
            random_resized_crop_box(300, 400, opts, 42, 3, 7));
  EXPECT_NE(random_resized_crop_box(300, 400, opts, 42, 3, 7),
            random_resized_crop_box(300, 400, opts, 42, 4, 7));
}

// The training transform: the box resized, flipped for about half the samples, normalised.
TEST(ResizedCrop, TrainingTransformFlipsAndNormalises) {
  const RrcImage im = rrc_image(3, 60, 80, 9);
  ResizedCrop opts;
  opts.size = 16;
  const size_t plane = 16 * 16;
  std::vector<float> out(3 * plane), plain(3 * plane);
  int64_t flipped = 0;
  for (int64_t sample = 0; sample < 200; ++sample) {
    random_resized_crop(im.view(), opts, 5, 0, sample, out.data());
    const CropBox box = random_resized_crop_box(60, 80, opts, 5, 0, sample);
    resize_bilinear(im.view(), box, 16, 16, plain.data());
    const bool flip = std::abs(out[0] - (plain[0] / 255.0f - 0.485f) / 0.229f) > 1e-5f;
    flipped += flip;
    for (size_t c = 0; c < 3; ++c) {
      for (size_t y = 0; y < 16; ++y) {
        for (size_t x = 0; x < 16; ++x) {
          const float v = plain[c * plane + y * 16 + (flip ? 15 - x : x)];
          ASSERT_NEAR(out[c * plane + y * 16 + x], (v / 255.0f - opts.mean[c]) / opts.std[c],
                      1e-4f);
        }
      }
    }
  }
  EXPECT_GT(flipped, 70);
  EXPECT_LT(flipped, 130);
  opts.mean = {0.5f};
  EXPECT_TRUE(dt::throws_error([&] { random_resized_crop(im.view(), opts, 5, 0, 0, out.data()); },
                               core::ErrorKind::kUsage, {"3 means and stds"}));
  EXPECT_TRUE(dt::throws_error(
      [&] {
        resize_bilinear(im.view(), {50, 0, 20, 10}, 4, 4, out.data());
      },
      core::ErrorKind::kUsage, {"outside the 60x80 image"}));
}

}  // namespace
}  // namespace ddpipe::data
