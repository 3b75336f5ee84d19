#include "shards_fixtures.h"

#include <gtest/gtest.h>

#include <random>

#include "fixtures.h"  // tests/data: encode_png, encode_jpeg, write_bytes
#include "shards/tar.h"

namespace ddpipe::testing {
namespace fs = std::filesystem;

namespace {
bool is_shard_key(const std::string& key) { return key.find("/shards/") != std::string::npos; }

std::vector<uint8_t> noise(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}
}  // namespace

void CountingStore::put(const std::string& key, std::string_view bytes) {
  ++puts;
  if (is_shard_key(key)) ++shard_puts;
  inner_.put(key, bytes);
}

void CountingStore::put_file(const std::string& key, const fs::path& source) {
  ++puts;
  if (is_shard_key(key)) ++shard_puts;
  inner_.put_file(key, source);
}

std::string CountingStore::get(const std::string& key) {
  ++gets;
  return inner_.get(key);
}

void CountingStore::get_file(const std::string& key, const fs::path& dest) {
  ++gets;
  inner_.get_file(key, dest);
}

std::string noise_png(uint32_t width, uint32_t height, uint32_t seed) {
  return encode_png(width, height, 2 /* PNG_COLOR_TYPE_RGB */, 8,
                    noise(size_t{width} * height * 3, seed));
}

std::string noise_jpeg(int width, int height, uint32_t seed) {
  return encode_jpeg(width, height, 1, noise(static_cast<size_t>(width * height), seed), 90);
}

int write_image_folder(const fs::path& root, const std::vector<std::string>& classes, int per_class,
                       uint32_t seed) {
  int n = 0;
  for (const std::string& cls : classes) {
    for (int i = 0; i < per_class; ++i, ++n) {
      const uint32_t s = seed + static_cast<uint32_t>(n) * 7919;
      const uint32_t w = 8 + (s % 290), h = 8 + ((s / 7) % 200);
      const std::string stem = cls + "_" + std::to_string(i);
      if (i % 2 == 0) {
        write_bytes(root / cls / (stem + ".png"), noise_png(w, h, s));
      } else {
        write_bytes(root / cls / (stem + ".JPG"),
                    noise_jpeg(static_cast<int>(w), static_cast<int>(h), s));
      }
    }
  }
  return n;
}

std::map<std::string, StoredSample> read_split(storage::Store& store,
                                               const shards::SplitIndex& split) {
  std::map<std::string, StoredSample> out;
  std::string last;
  for (const shards::ShardRef& ref : split.shards) {
    const std::string tar = store.get(ref.key);
    EXPECT_EQ(tar.size(), ref.bytes) << ref.key;
    const auto members = shards::scan_tar(tar, ref.key);
    EXPECT_EQ(members.size(), 2 * static_cast<size_t>(ref.samples)) << ref.key;
    for (size_t i = 0; i + 1 < members.size(); i += 2) {
      const std::string& image = members[i].name;
      const std::string key = image.substr(0, image.find('.'));
      EXPECT_EQ(members[i + 1].name, key + ".cls") << ref.key;
      EXPECT_LT(last, key) << "keys not increasing in " << ref.key;
      if (i == 0) EXPECT_EQ(ref.first_key, key);
      last = key;
      StoredSample& s = out[key];
      s.ext = image.substr(image.find('.') + 1);
      s.bytes = tar.substr(members[i].offset, members[i].size);
      s.label = std::stoi(tar.substr(members[i + 1].offset, members[i + 1].size));
    }
  }
  return out;
}

}  // namespace ddpipe::testing
