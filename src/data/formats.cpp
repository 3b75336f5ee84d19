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
#include "core/random.h"
#include "core/strings.h"
#include "data/download.h"
#include "data/image.h"
#include "shards/listing.h"

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

struct ImageItem {
  const shards::FolderEntry* entry;  // a file, or a member of the listing's archive
  bool test;
  size_t slot;  // position within its split
};

// Decodes every item into its split, on a few threads; the earliest failure seen is rethrown.
void decode_items(const std::vector<ImageItem>& items, const shards::FolderListing& listing,
                  Dataset& d) {
  const size_t bytes = static_cast<size_t>(d.image_bytes());
  for (const auto& it : items) {
    (it.test ? d.test : d.train).labels.push_back(it.entry->label);  // slot order
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
        const Image img =
            decode_image(shards::read_entry(listing, *it.entry), it.entry->path.string());
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

// The listing rules (classes, train/ and test/, the seeded split) are shards::list_image_folder's,
// so both forms of one folder hold the same images in the same order.
Dataset load_image_folder(const fs::path& root, const std::string& name, int64_t channels,
                          int64_t height, int64_t width, double test_fraction, uint64_t seed) {
  if ((channels != 1 && channels != 3) || height <= 0 || width <= 0) {
    core::fail_usage("image folder " + root.string() + ": invalid image shape " +
                     std::to_string(channels) + "x" + std::to_string(height) + "x" +
                     std::to_string(width) + " (data.channels must be 1 or 3)");
  }
  const shards::FolderListing listing = shards::list_image_folder(root, test_fraction, seed);
  Dataset d;
  d.name = name;
  d.channels = channels;
  d.height = height;
  d.width = width;
  d.classes = listing.classes;
  std::vector<ImageItem> items;
  for (size_t i = 0; i < listing.train.size(); ++i) {
    items.push_back({&listing.train[i], false, i});
  }
  for (size_t i = 0; i < listing.test.size(); ++i) {
    items.push_back({&listing.test[i], true, i});
  }
  decode_items(items, listing, d);
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
      l = static_cast<int32_t>(core::uniform_below(rng, static_cast<uint64_t>(classes)));
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
