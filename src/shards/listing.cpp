#include "shards/listing.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/random.h"
#include "core/strings.h"
#include "shards/archive.h"

namespace ddpipe::shards {
namespace fs = std::filesystem;
namespace {

bool is_hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

bool is_image_file(const fs::path& p) {
  const std::string ext = core::to_lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// What the listing rules walk: a folder on disk, or the member names of a tar archive.
class Tree {
 public:
  virtual ~Tree() = default;
  virtual bool is_directory(const fs::path& p) const = 0;
  // The sub-folders (or the image files) of `dir` that are not hidden, sorted.
  virtual std::vector<fs::path> children(const fs::path& dir, bool directories) const = 0;
  virtual FolderEntry entry(const fs::path& path, int32_t label) const = 0;
  // How messages name `p`.
  virtual std::string name(const fs::path& p) const { return p.string(); }
};

class DiskTree : public Tree {
 public:
  bool is_directory(const fs::path& p) const override {
    std::error_code ec;
    return fs::is_directory(p, ec);
  }
  std::vector<fs::path> children(const fs::path& dir, bool directories) const override {
    std::vector<fs::path> out;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      if (is_hidden(it->path())) continue;
      if (directories ? it->is_directory() : (it->is_regular_file() && is_image_file(it->path())))
        out.push_back(it->path());
    }
    if (ec) core::fail_data("cannot list " + dir.string() + ": " + ec.message());
    std::sort(out.begin(), out.end());
    return out;
  }
  FolderEntry entry(const fs::path& path, int32_t label) const override {
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
};

// The folders of an archive are the prefixes of its member names; its root is "".
class ArchiveTree : public Tree {
 public:
  explicit ArchiveTree(const fs::path& archive) : archive_(archive) {
    for (ArchiveMember& m : list_tar(archive)) {
      const fs::path p = fs::path(m.name).lexically_normal();
      for (fs::path child = p; !child.empty(); child = child.parent_path()) {
        kids_[child.parent_path().string()].insert(child);
      }
      members_[p.string()] = std::move(m);
    }
  }
  bool is_directory(const fs::path& p) const override { return kids_.count(p.string()) > 0; }
  std::vector<fs::path> children(const fs::path& dir, bool directories) const override {
    std::vector<fs::path> out;
    const auto it = kids_.find(dir.string());
    if (it == kids_.end()) return out;
    for (const fs::path& c : it->second) {  // a std::set: sorted
      if (is_hidden(c)) continue;
      if (directories ? is_directory(c) : (members_.count(c.string()) && is_image_file(c)))
        out.push_back(c);
    }
    return out;
  }
  FolderEntry entry(const fs::path& path, int32_t label) const override {
    const ArchiveMember& m = members_.at(path.string());
    return {archive_ / path, m.size, m.mtime * 1000000000LL, label, static_cast<int64_t>(m.offset)};
  }
  std::string name(const fs::path& p) const override { return (archive_ / p).string(); }

 private:
  fs::path archive_;
  std::map<std::string, std::set<fs::path>> kids_;  // folder ("" = the root) → its entries
  std::map<std::string, ArchiveMember> members_;    // regular files by normalised name
};

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
fs::path presplit_test_dir(const Tree& tree, const fs::path& root) {
  if (!tree.is_directory(root / "train")) return {};
  const bool test = tree.is_directory(root / "test"), val = tree.is_directory(root / "val");
  if (test && val) {
    core::fail_data("image folder " + tree.name(root) +
                    ": both test/ and val/ next to train/; the test split must be one of them "
                    "(rename or move the other)");
  }
  return test ? root / "test" : val ? root / "val" : fs::path();
}

void add_presplit_test(const Tree& tree, const fs::path& test_dir, const fs::path& train_dir,
                       FolderListing& l) {
  for (const fs::path& dir : tree.children(test_dir, true)) {
    const std::string cls = dir.filename().string();
    auto it = std::find(l.classes.begin(), l.classes.end(), cls);
    if (it == l.classes.end()) {
      core::fail_data("image folder " + tree.name(dir) + ": class '" + cls + "' has no folder in " +
                      tree.name(train_dir));
    }
    for (const auto& f : tree.children(dir, false)) {
      l.test.push_back(tree.entry(f, static_cast<int32_t>(it - l.classes.begin())));
    }
  }
}

// The rules of the header, on `tree` from `root`.
FolderListing list_tree(const Tree& tree, const fs::path& root, double test_fraction,
                        uint64_t seed) {
  FolderListing l;
  const fs::path test_dir = presplit_test_dir(tree, root);
  l.presplit = !test_dir.empty();
  const fs::path class_root = l.presplit ? root / "train" : root;
  for (const fs::path& dir : tree.children(class_root, true)) {
    l.classes.push_back(dir.filename().string());
  }
  if (l.classes.empty()) {
    core::fail_data("image folder " + tree.name(class_root) + ": no class folders (expected " +
                    tree.name(class_root) + "/<class>/*.png|jpg)");
  }
  for (size_t c = 0; c < l.classes.size(); ++c) {
    const std::vector<fs::path> files = tree.children(class_root / l.classes[c], false);
    if (files.empty()) {
      core::fail_data("image folder " + tree.name(class_root / l.classes[c]) +
                      ": no .png/.jpg images");
    }
    const std::vector<bool> is_test =
        l.presplit ? std::vector<bool>(files.size(), false)
                   : seeded_test_choice(l.classes[c], files.size(), test_fraction, seed);
    for (size_t i = 0; i < files.size(); ++i) {
      (is_test[i] ? l.test : l.train).push_back(tree.entry(files[i], static_cast<int32_t>(c)));
    }
  }
  if (l.presplit) add_presplit_test(tree, test_dir, class_root, l);
  return l;
}

// An archive of `tar cf x.tar folder/` holds one top folder: the image folder is inside.
fs::path archive_root(const Tree& tree) {
  const auto top = tree.children("", true);
  if (top.size() != 1 || !tree.children("", false).empty()) return "";
  const fs::path inner = top[0];
  const bool holds_folders = !tree.children(inner, true).empty();
  return holds_folders ? inner : fs::path("");
}

}  // namespace

FolderListing list_image_folder(const fs::path& root, double test_fraction, uint64_t seed) {
  if (!(test_fraction >= 0.0 && test_fraction < 1.0)) {
    core::fail_usage("image folder: data.test_fraction must be in [0, 1), got " +
                     std::to_string(test_fraction));
  }
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    const ArchiveTree tree(root);
    FolderListing l = list_tree(tree, archive_root(tree), test_fraction, seed);
    l.archive = root;
    return l;
  }
  if (!fs::is_directory(root, ec)) {
    core::fail_data("image folder " + root.string() + " does not exist (set data.path)");
  }
  return list_tree(DiskTree(), root, test_fraction, seed);
}

std::string read_entry(const FolderListing& listing, const FolderEntry& e) {
  if (e.archive_offset < 0) return core::read_file(e.path);
  return read_tar_member(listing.archive, static_cast<uint64_t>(e.archive_offset), e.size);
}

}  // namespace ddpipe::shards
