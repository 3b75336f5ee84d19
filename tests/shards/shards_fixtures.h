// Fixtures for ddpipe::shards tests: a LocalStore that counts what goes through it, image
// folders of real PNG and JPEG files, reading a stored sharded dataset back.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "shards/index.h"
#include "storage/local_store.h"

namespace ddpipe::testing {

// A real LocalStore that counts puts and gets, by key prefix on request.
class CountingStore : public storage::Store {
 public:
  explicit CountingStore(const std::filesystem::path& root) : inner_(root) {}
  std::string url() const override { return inner_.url(); }
  void put(const std::string& key, std::string_view bytes) override;
  void put_file(const std::string& key, const std::filesystem::path& source) override;
  std::string get(const std::string& key) override;
  void get_file(const std::string& key, const std::filesystem::path& dest) override;
  bool exists(const std::string& key) override { return inner_.exists(key); }
  std::vector<storage::ObjectInfo> list(const std::string& prefix) override {
    return inner_.list(prefix);
  }
  void remove(const std::string& key) override { inner_.remove(key); }

  std::atomic<int> shard_puts{0};  // puts of keys under datasets/*/shards/
  std::atomic<int> puts{0};
  std::atomic<int> gets{0};

 private:
  storage::LocalStore inner_;
};

// Random-noise RGB PNG (size grows with the area) and grey JPEG, deterministic from `seed`.
std::string noise_png(uint32_t width, uint32_t height, uint32_t seed);
std::string noise_jpeg(int width, int height, uint32_t seed);

// Writes root/<class>/<name> files: `per_class` images per class, alternating PNG and JPEG of
// varied sizes (widths 8 to ~300). Returns the number of files written.
int write_image_folder(const std::filesystem::path& root, const std::vector<std::string>& classes,
                       int per_class, uint32_t seed);

// A stored sample read back: the image member's bytes, its extension, the class.
struct StoredSample {
  std::string ext;
  std::string bytes;
  int label = -1;
};
// Every sample of the shards of `split`, by key; fails the test on a malformed shard
// (members not in <key>.<ext>, <key>.cls pairs, keys not increasing).
std::map<std::string, StoredSample> read_split(storage::Store& store,
                                               const shards::SplitIndex& split);

}  // namespace ddpipe::testing
