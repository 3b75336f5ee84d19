#include "data/formats.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"
#include "data/download.h"
#include "data/image.h"

namespace ddpipe::data {
namespace fs = std::filesystem;
namespace {

std::string read_bytes(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) core::fail_data(path.string() + ": file not found");
  return core::read_file(path);
}

std::string read_gzip(const fs::path& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) core::fail_data(path.string() + ": cannot open");
  gzbuffer(f, 1 << 17);
  std::string out;
  std::vector<char> buf(1 << 20);
  int n = 0;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) {
    out.append(buf.data(), static_cast<size_t>(n));
  }
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  std::string message = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    core::fail_data(path.string() + ": corrupt gzip data: " + message);
  }
  return out;
}

uint32_t read_be32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + at;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// The IDX file `stem` in `dir`, plain or gzipped; returns its path and bytes.
std::pair<fs::path, std::string> read_idx_file(const fs::path& dir, const std::string& stem) {
  fs::path plain = dir / stem, gz = dir / (stem + ".gz");
  std::error_code ec;
  if (fs::is_regular_file(plain, ec)) return {plain, read_bytes(plain)};
  if (fs::is_regular_file(gz, ec)) return {gz, read_gzip(gz)};
  core::fail_data("IDX dataset in " + dir.string() + ": missing " + stem + " (or " + stem + ".gz)");
}

// Parses an IDX file of unsigned bytes with `dims` dimensions; returns the dimension sizes and
// copies the payload into `out`.
std::vector<uint32_t> parse_idx(const fs::path& path, const std::string& bytes, uint32_t dims,
                                std::vector<uint8_t>& out) {
  const uint32_t magic = 0x0800u | dims;
  const size_t header = 4 + 4 * size_t{dims};
  if (bytes.size() < header) {
    core::fail_data(path.string() + ": truncated IDX header (" + std::to_string(bytes.size()) +
                    " bytes)");
  }
  if (read_be32(bytes, 0) != magic) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "bad IDX magic 0x%08x, expected 0x%08x", read_be32(bytes, 0),
                  magic);
    core::fail_data(path.string() + ": " + buf);
  }
  std::vector<uint32_t> shape(dims);
  uint64_t payload = 1;
  for (uint32_t i = 0; i < dims; ++i) {
    shape[i] = read_be32(bytes, 4 + 4 * size_t{i});
    if (__builtin_mul_overflow(payload, uint64_t{shape[i]}, &payload)) {
      core::fail_data(path.string() + ": implausible IDX dimensions");
    }
  }
  const uint64_t have = bytes.size() - header;
  if (have != payload) {
    core::fail_data(path.string() + ": " + (have < payload ? "truncated" : "trailing data") +
                    ": the header announces " + std::to_string(payload) + " bytes of data, " +
                    "the file holds " + std::to_string(have));
  }
  out.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return shape;
}

void load_idx_split(const fs::path& dir, const std::string& prefix, Dataset& d, Split& split) {
  auto [images_path, images] = read_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::vector<uint32_t> shape = parse_idx(images_path, images, 3, split.images);
  images = std::string();
  if (d.height == 0) {
    d.channels = 1;
    d.height = shape[1];
    d.width = shape[2];
  } else if (d.height != shape[1] || d.width != shape[2]) {
    core::fail_data(images_path.string() + ": images are " + std::to_string(shape[1]) + "x" +
                    std::to_string(shape[2]) + ", the train images are " +
                    std::to_string(d.height) + "x" + std::to_string(d.width));
  }
  auto [labels_path, labels] = read_idx_file(dir, prefix + "-labels-idx1-ubyte");
  std::vector<uint8_t> raw;
  const std::vector<uint32_t> count = parse_idx(labels_path, labels, 1, raw);
  if (count[0] != shape[0]) {
    core::fail_data(labels_path.string() + ": " + std::to_string(count[0]) + " labels for " +
                    std::to_string(shape[0]) + " images in " + images_path.string());
  }
  split.labels.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] >= d.classes.size()) {
      core::fail_data(labels_path.string() + ": label " + std::to_string(raw[i]) + " at index " +
                      std::to_string(i) + " is out of range (" + std::to_string(d.classes.size()) +
                      " classes)");
    }
    split.labels[i] = raw[i];
  }
}

// ---- CIFAR-10 -------------------------------------------------------------------------------

constexpr size_t kCifarImage = 3 * 32 * 32;
constexpr size_t kCifarRecord = 1 + kCifarImage;
const char* const kCifarTrain[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                   "data_batch_4.bin", "data_batch_5.bin"};

bool is_cifar_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "data_batch_1.bin", ec);
}

// The folder holding the .bin files: `dir` itself or its cifar-10-batches-bin/.
fs::path find_cifar_batches(const fs::path& dir) {
  if (is_cifar_dir(dir)) return dir;
  if (is_cifar_dir(dir / "cifar-10-batches-bin")) return dir / "cifar-10-batches-bin";
  core::fail_data("CIFAR-10: no data_batch_1.bin in " + dir.string() +
                  " or its cifar-10-batches-bin/ (set data.download=true to fetch the archive)");
}

void append_cifar_file(const fs::path& path, Split& split) {
  const std::string bytes = read_bytes(path);
  if (bytes.empty() || bytes.size() % kCifarRecord != 0) {
    core::fail_data(path.string() + ": size " + std::to_string(bytes.size()) +
                    " is not a positive multiple of the " + std::to_string(kCifarRecord) +
                    "-byte CIFAR-10 record");
  }
  const size_t n = bytes.size() / kCifarRecord;
  const size_t base = split.labels.size();
  split.labels.resize(base + n);
  split.images.resize((base + n) * kCifarImage);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  for (size_t i = 0; i < n; ++i, p += kCifarRecord) {
    if (p[0] >= 10) {
      core::fail_data(path.string() + ": record " + std::to_string(i) + " has label " +
                      std::to_string(p[0]) + " (CIFAR-10 labels are 0..9)");
    }
    split.labels[base + i] = p[0];
    std::copy(p + 1, p + kCifarRecord, split.images.begin() + (base + i) * kCifarImage);
  }
}

std::vector<std::string> cifar_classes(const fs::path& dir) {
  const fs::path meta = dir / "batches.meta.txt";
  std::error_code ec;
  if (!fs::is_regular_file(meta, ec)) {
    return {"airplane", "automobile", "bird",  "cat",  "deer",
            "dog",      "frog",       "horse", "ship", "truck"};
  }
  std::vector<std::string> names;
  const std::string text = read_bytes(meta);
  size_t start = 0;
  while (start < text.size() && names.size() < 10) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) names.push_back(line);
    start = end + 1;
  }
  if (names.size() != 10) {
    core::fail_data(meta.string() + ": expected 10 class names, found " +
                    std::to_string(names.size()));
  }
  return names;
}

Dataset load_cifar_dir(const fs::path& dir, const std::string& name) {
  Dataset d;
  d.name = name;
  d.channels = 3;
  d.height = 32;
  d.width = 32;
  d.classes = cifar_classes(dir);
  for (const char* file : kCifarTrain) append_cifar_file(dir / file, d.train);
  append_cifar_file(dir / "test_batch.bin", d.test);
  finalize(d, dir.string());
  return d;
}

// ---- image folders --------------------------------------------------------------------------

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// Uniform in [0, n) from a standard-specified engine (std::uniform_int_distribution is not
// the same on every standard library, and the split must be).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r;
  do {
    r = rng();
  } while (r >= limit);
  return r % n;
}

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

struct ImageItem {
  fs::path path;
  int32_t label;
  bool test;
  size_t slot;  // position within its split
};

// Decodes every item into its split, on a few threads; the earliest failure seen is rethrown.
void decode_items(const std::vector<ImageItem>& items, Dataset& d) {
  const size_t bytes = static_cast<size_t>(d.image_bytes());
  for (const auto& it : items) {
    (it.test ? d.test : d.train).labels.push_back(it.label);  // slot order
    d.train.images.resize(d.train.labels.size() * bytes);
  }
  d.test.images.resize(d.test.labels.size() * bytes);

  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  size_t error_at = items.size();
  std::exception_ptr error;
  auto work = [&] {
    while (!failed) {
      const size_t i = next++;
      if (i >= items.size()) break;
      const ImageItem& it = items[i];
      try {
        const Image img = decode_image(read_bytes(it.path), it.path.string());
        const std::vector<uint8_t> chw = to_chw(img, d.channels, d.height, d.width);
        Split& s = it.test ? d.test : d.train;
        std::copy(chw.begin(), chw.end(), s.images.begin() + it.slot * bytes);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < error_at) {
          error_at = i;
          error = std::current_exception();
        }
        failed = true;
      }
    }
  };
  const size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(threads, items.size()); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

Dataset load_idx(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    core::fail_data("IDX dataset folder " + dir.string() + " does not exist (set data.path)");
  }
  Dataset d;
  d.name = name;
  if (core::to_lower(name).find("fashion") != std::string::npos) {
    d.classes = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  } else {
    for (int i = 0; i < 10; ++i) d.classes.push_back(std::to_string(i));
  }
  load_idx_split(dir, "train", d, d.train);
  load_idx_split(dir, "t10k", d, d.test);
  finalize(d, dir.string());
  return d;
}

Dataset load_cifar10(const fs::path& path, const std::string& name) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load_cifar_dir(find_cifar_batches(path), name);
  if (!fs::is_regular_file(path, ec)) {
    core::fail_data("CIFAR-10 data not found at " + path.string() +
                    " (set data.path, or data.download=true to fetch it)");
  }
  // The archive: extract into a private temporary folder, read, remove.
  const core::TempDir extracted("ddpipe-cifar10");
  const fs::path& tmp = extracted.path();
  extract_archive(path, tmp / "x");
  return load_cifar_dir(find_cifar_batches(tmp / "x"), name);
}

Dataset load_image_folder(const fs::path& root, const std::string& name, int64_t channels,
                          int64_t height, int64_t width, double test_fraction, uint64_t seed) {
  if ((channels != 1 && channels != 3) || height <= 0 || width <= 0) {
    core::fail_usage("image folder " + root.string() + ": invalid image shape " +
                     std::to_string(channels) + "x" + std::to_string(height) + "x" +
                     std::to_string(width) + " (data.channels must be 1 or 3)");
  }
  if (!(test_fraction >= 0.0 && test_fraction < 1.0)) {
    core::fail_usage("image folder: data.test_fraction must be in [0, 1), got " +
                     std::to_string(test_fraction));
  }
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    core::fail_data("image folder " + root.string() + " does not exist (set data.path)");
  }
  Dataset d;
  d.name = name;
  d.channels = channels;
  d.height = height;
  d.width = width;

  std::vector<ImageItem> items;
  size_t train_count = 0, test_count = 0;
  auto add = [&](const fs::path& file, int32_t label, bool test) {
    items.push_back({file, label, test, test ? test_count++ : train_count++});
  };
  const bool presplit = fs::is_directory(root / "train", ec) && fs::is_directory(root / "test", ec);
  const fs::path class_root = presplit ? root / "train" : root;
  for (const fs::path& dir : sorted_entries(class_root, true)) {
    d.classes.push_back(dir.filename().string());
  }
  if (d.classes.empty()) {
    core::fail_data("image folder " + class_root.string() + ": no class folders (expected " +
                    class_root.string() + "/<class>/*.png|jpg)");
  }
  for (size_t c = 0; c < d.classes.size(); ++c) {
    const std::string& cls = d.classes[c];
    std::vector<fs::path> files = sorted_entries(class_root / cls, false);
    if (files.empty()) {
      core::fail_data("image folder " + (class_root / cls).string() + ": no .png/.jpg images");
    }
    const auto label = static_cast<int32_t>(c);
    if (presplit) {
      for (const auto& f : files) add(f, label, false);
      continue;
    }
    // Seeded per-class split, independent of the other classes.
    std::mt19937_64 rng(splitmix64(seed ^ fnv1a(cls)));
    std::vector<size_t> order(files.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[uniform_below(rng, i)]);
    const size_t n_test = std::min<size_t>(
        static_cast<size_t>(std::llround(static_cast<double>(files.size()) * test_fraction)),
        files.size() - 1);
    std::vector<bool> is_test(files.size(), false);
    for (size_t i = 0; i < n_test; ++i) is_test[order[i]] = true;
    for (size_t i = 0; i < files.size(); ++i) add(files[i], label, is_test[i]);
  }
  if (presplit) {
    for (const fs::path& dir : sorted_entries(root / "test", true)) {
      const std::string cls = dir.filename().string();
      auto it = std::find(d.classes.begin(), d.classes.end(), cls);
      if (it == d.classes.end()) {
        core::fail_data("image folder " + dir.string() + ": class '" + cls + "' has no folder in " +
                        (root / "train").string());
      }
      for (const auto& f : sorted_entries(dir, false)) {
        add(f, static_cast<int32_t>(it - d.classes.begin()), true);
      }
    }
  }
  decode_items(items, d);
  finalize(d, root.string());
  return d;
}

Dataset make_synthetic(const std::string& name, int64_t train_size, int64_t test_size,
                       int64_t channels, int64_t height, int64_t width, int64_t classes,
                       uint64_t seed) {
  if (train_size <= 0 || test_size < 0 || channels <= 0 || height <= 0 || width <= 0 ||
      classes <= 0) {
    core::fail_usage("synthetic dataset: sizes must be positive (train " +
                     std::to_string(train_size) + ", test " + std::to_string(test_size) +
                     ", shape " + std::to_string(channels) + "x" + std::to_string(height) + "x" +
                     std::to_string(width) + ", classes " + std::to_string(classes) + ")");
  }
  Dataset d;
  d.name = name;
  d.channels = channels;
  d.height = height;
  d.width = width;
  for (int64_t c = 0; c < classes; ++c) d.classes.push_back(std::to_string(c));
  std::mt19937_64 rng(seed);
  auto fill = [&](Split& s, int64_t n) {
    s.images.resize(static_cast<size_t>(n * d.image_bytes()));
    for (size_t i = 0; i < s.images.size(); i += 8) {
      uint64_t r = rng();
      for (size_t k = i; k < std::min(i + 8, s.images.size()); ++k, r >>= 8) {
        s.images[k] = static_cast<uint8_t>(r);
      }
    }
    s.labels.resize(static_cast<size_t>(n));
    for (auto& l : s.labels) {
      l = static_cast<int32_t>(uniform_below(rng, static_cast<uint64_t>(classes)));
    }
  };
  fill(d.train, train_size);
  fill(d.test, test_size);
  finalize(d, "synthetic dataset " + name);
  return d;
}

Dataset load_source(const core::DataConfig& config, uint64_t seed) {
  const fs::path path = core::expand_user(config.path);
  if (config.format == "idx") return load_idx(path, config.name);
  if (config.format == "cifar10") {
    if (config.download) {
      return load_cifar10(ensure_cifar10(path, config.url, config.md5), config.name);
    }
    return load_cifar10(path, config.name);
  }
  if (config.format == "image-folder") {
    return load_image_folder(path, config.name, config.channels, config.height, config.width,
                             config.test_fraction, seed);
  }
  if (config.format == "synthetic") {
    return make_synthetic(config.name, config.train_size, config.test_size, config.channels,
                          config.height, config.width, config.classes, seed);
  }
  core::fail_usage("data.format: unknown format '" + config.format +
                   "' (expected idx | cifar10 | image-folder | synthetic)");
}

}  // namespace ddpipe::data
