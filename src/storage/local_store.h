// ddpipe::storage — LocalStore: the artifact store as a folder (the default, ./artifacts).
// Atomicity comes from write-to-temporary + fsync + rename(2) within the same directory.
#pragma once

#include <filesystem>

#include "storage/store.h"

namespace ddpipe::storage {

class LocalStore : public Store {
 public:
  explicit LocalStore(std::filesystem::path root);

  std::string url() const override;
  void put(const std::string& key, std::string_view bytes) override;
  void put_file(const std::string& key, const std::filesystem::path& source) override;
  std::string get(const std::string& key) override;
  void get_file(const std::string& key, const std::filesystem::path& dest) override;
  bool exists(const std::string& key) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  void remove(const std::string& key) override;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path path_of(const std::string& key) const;
  std::filesystem::path root_;
};

}  // namespace ddpipe::storage
