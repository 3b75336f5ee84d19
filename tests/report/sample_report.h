// Report data built in memory, as the trainer has it at publish time: plausible curves (a fixed
// pseudo-random sequence, so every run is the same), step rows and a confusion matrix.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "registry/manifest.h"
#include "report/report.h"

namespace ddpipe::report::sample {

// A deterministic pseudo-random number in [-1, 1).
inline double jitter(uint64_t& state) {
  state = state * 6364136223846793005ULL + 1442695040888963407ULL;
  return double(state >> 11) / double(1ULL << 52) - 1.0;
}

inline std::vector<std::string> fashion_classes() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

// Per-epoch metrics of a run that converges to `floor` loss; `speed` scales images/s.
inline nlohmann::json epochs(int n, double floor, double speed, uint64_t seed) {
  nlohmann::json out = nlohmann::json::array();
  for (int e = 1; e <= n; ++e) {
    const double t = double(e) / double(n);
    const double train_loss = floor + 1.6 * std::exp(-4.0 * t) + 0.01 * jitter(seed);
    const double test_loss = train_loss + 0.04 + 0.06 * t + 0.015 * jitter(seed);
    out.push_back({{"epoch", e},
                   {"train_loss", train_loss},
                   {"train_acc", 1.0 - 0.3 * train_loss},
                   {"test_loss", test_loss},
                   {"test_acc", 1.0 - 0.3 * test_loss},
                   {"test_samples", 10000},
                   {"lr", 0.2 * 0.5 * (1 + std::cos(3.14159265 * (e - 1) / n))},
                   {"train_seconds", 40.0},
                   {"epoch_seconds", 44.0},
                   {"images_per_second", 1400 * speed},
                   {"steady_images_per_second", speed * (1500 + 40 * jitter(seed))},
                   {"peak_rss_mb_max_rank", 900},
                   {"precision", "fp32"}});
  }
  return out;
}

// Step rows: `per_epoch` steps in each of `n_epochs` epochs.
inline std::vector<nlohmann::json> steps(int n_epochs, int per_epoch, double floor, uint64_t seed) {
  std::vector<nlohmann::json> rows;
  const int total = n_epochs * per_epoch;
  for (int g = 1; g <= total; ++g) {
    const double t = double(g) / double(total);
    rows.push_back({{"epoch", (g - 1) / per_epoch + 1},
                    {"epochs", n_epochs},
                    {"step", (g - 1) % per_epoch + 1},
                    {"steps", per_epoch},
                    {"global_step", g},
                    {"loss", floor + 1.9 * std::exp(-5.0 * t) + 0.08 * jitter(seed)},
                    {"lr", 0.2}});
  }
  return rows;
}

// An evaluation of `classes` with mostly-right predictions and a few usual confusions.
inline nlohmann::json evaluation(const std::vector<std::string>& classes, int64_t per_class,
                                 uint64_t seed) {
  const std::size_t n = classes.size();
  nlohmann::json matrix = nlohmann::json::array(), per = nlohmann::json::array();
  std::vector<int64_t> col(n, 0);
  std::vector<std::vector<int64_t>> m(n, std::vector<int64_t>(n, 0));
  for (std::size_t i = 0; i < n; ++i) {
    int64_t left = per_class;
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const double base = (j + 1 == i || i + 1 == j) ? 0.03 : 0.004;
      m[i][j] = std::llround(per_class * base * (1 + jitter(seed)));
      left -= m[i][j];
    }
    m[i][i] = left;
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) col[j] += m[i][j];
  }
  for (std::size_t i = 0; i < n; ++i) {
    matrix.push_back(m[i]);
    per.push_back({{"class", classes[i]},
                   {"precision", double(m[i][i]) / double(col[i])},
                   {"recall", double(m[i][i]) / double(per_class)},
                   {"support", per_class}});
  }
  return {{"classes", classes},
          {"confusion_matrix", matrix},
          {"per_class", per},
          {"samples", per_class * int64_t(n)}};
}

inline registry::Manifest manifest(int n_epochs, double floor, double speed, uint64_t seed) {
  registry::Manifest m;
  m.dataset.name = "fashion-mnist";
  m.dataset.digest = "3f2a9c1e7b4d5a6f00112233445566778899aabbccddeeff0011223344556677";
  m.dataset.classes = fashion_classes();
  m.dataset.channels = 1, m.dataset.height = 28, m.dataset.width = 28;
  m.dataset.train_size = 60000, m.dataset.test_size = 10000;
  m.model_spec = {"resnet-mini", 1, 10, 16};
  m.lineage.dataset = "datasets/fashion-mnist/3f2a9c1e7b4d/";
  m.config = "name: fmnist-resnet\nseed: 42\ntrain:\n  epochs: " + std::to_string(n_epochs) +
             "\n  batch_size: 128\n  lr: 0.2\nmodel:\n  arch: resnet-mini\n  width: 16\n";
  m.source_revision = "3ef4b73c0ffee0123456789abcdef0123456789a";
  m.run_id = "run-" + std::to_string(seed);
  m.world_size = 2;
  m.seed = 42;
  m.parameters = 176202;
  m.epochs = epochs(n_epochs, floor, speed, seed);
  m.final_metrics = m.epochs.back();
  m.train_seconds = 44.0 * n_epochs;
  m.created = "2026-12-06T10:15:00Z";
  return m;
}

inline VersionReport version(const std::string& name, int n_epochs, double floor, double speed,
                             uint64_t seed) {
  VersionReport v{name, manifest(n_epochs, floor, speed, seed), {}};
  v.manifest.version = name;
  return v;
}

}  // namespace ddpipe::report::sample
