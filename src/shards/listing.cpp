#include "shards/listing.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/random.h"
#include "core/strings.h"

namespace ddpipe::shards {
namespace fs = std::filesystem;
namespace {

bool is_hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

bool is_image_file(const fs::path& p) {
  const std::string ext = core::to_lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<fs::path> sorted_entries(const fs::path& dir, bool directories) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (is_hidden(it->path())) continue;
    if (directories ? it->is_directory() : (it->is_regular_file() && is_image_file(it->path()))) {
      out.push_back(it->path());
    }
  }
  if (ec) core::fail_data("cannot list " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

FolderEntry entry(const fs::path& path, int32_t label) {
  std::error_code ec;
  FolderEntry e{path, fs::file_size(path, ec), 0, label};
  if (!ec) {
    e.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     fs::last_write_time(path, ec).time_since_epoch())
                     .count();
  }
  if (ec) core::fail_data("cannot read " + path.string() + ": " + ec.message());
  return e;
}

// Which of `n` files of class `cls` go to the test split.
std::vector<bool> seeded_test_choice(const std::string& cls, size_t n, double test_fraction,
                                     uint64_t seed) {
  std::mt19937_64 rng(core::splitmix64(seed ^ core::fnv1a(cls)));
  std::vector<size_t> order(n);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[core::uniform_below(rng, i)]);
  const size_t n_test = std::min<size_t>(
      static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction)), n - 1);
  std::vector<bool> is_test(n, false);
  for (size_t i = 0; i < n_test; ++i) is_test[order[i]] = true;
  return is_test;
}

// The folder of the test split next to root/train: test/ or ImageNet's val/; empty when there
// is neither (or no train/), which makes the listing unsplit.
fs::path presplit_test_dir(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root / "train", ec)) return {};
  const bool test = fs::is_directory(root / "test", ec), val = fs::is_directory(root / "val", ec);
  if (test && val) {
    core::fail_data("image folder " + root.string() +
                    ": both test/ and val/ next to train/; the test split must be one of them "
                    "(rename or move the other)");
  }
  return test ? root / "test" : val ? root / "val" : fs::path();
}

void add_presplit_test(const fs::path& test_dir, const fs::path& train_dir, FolderListing& l) {
  for (const fs::path& dir : sorted_entries(test_dir, true)) {
    const std::string cls = dir.filename().string();
    auto it = std::find(l.classes.begin(), l.classes.end(), cls);
    if (it == l.classes.end()) {
      core::fail_data("image folder " + dir.string() + ": class '" + cls + "' has no folder in " +
                      train_dir.string());
    }
    for (const auto& f : sorted_entries(dir, false)) {
      l.test.push_back(entry(f, static_cast<int32_t>(it - l.classes.begin())));
    }
  }
}

}  // namespace

FolderListing list_image_folder(const fs::path& root, double test_fraction, uint64_t seed) {
  if (!(test_fraction >= 0.0 && test_fraction < 1.0)) {
    core::fail_usage("image folder: data.test_fraction must be in [0, 1), got " +
                     std::to_string(test_fraction));
  }
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    core::fail_data("image folder " + root.string() + " does not exist (set data.path)");
  }
  FolderListing l;
  const fs::path test_dir = presplit_test_dir(root);
  l.presplit = !test_dir.empty();
  const fs::path class_root = l.presplit ? root / "train" : root;
  for (const fs::path& dir : sorted_entries(class_root, true)) {
    l.classes.push_back(dir.filename().string());
  }
  if (l.classes.empty()) {
    core::fail_data("image folder " + class_root.string() + ": no class folders (expected " +
                    class_root.string() + "/<class>/*.png|jpg)");
  }
  for (size_t c = 0; c < l.classes.size(); ++c) {
    const std::vector<fs::path> files = sorted_entries(class_root / l.classes[c], false);
    if (files.empty()) {
      core::fail_data("image folder " + (class_root / l.classes[c]).string() +
                      ": no .png/.jpg images");
    }
    const std::vector<bool> is_test =
        l.presplit ? std::vector<bool>(files.size(), false)
                   : seeded_test_choice(l.classes[c], files.size(), test_fraction, seed);
    for (size_t i = 0; i < files.size(); ++i) {
      (is_test[i] ? l.test : l.train).push_back(entry(files[i], static_cast<int32_t>(c)));
    }
  }
  if (l.presplit) add_presplit_test(test_dir, class_root, l);
  return l;
}

}  // namespace ddpipe::shards
