// ddpipe::storage — LocalStore: the artifact store as a folder (the default, ./artifacts).
// Atomicity comes from write-to-temporary + fsync + rename(2) within the same directory.
// Containment: every key is checked by validate_key, and a key whose path resolves outside the
// folder (through a symbolic link inside it) is refused with core::Error(kData) before any read
// or write; list() leaves such objects out. Symbolic links that stay inside are followed. (The
// check and the access are two steps: it guards against what keys and stored files say, not
// against a process that swaps links in the folder meanwhile — docs/security.md.)
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
  // root_/key once the key is valid and the path resolves inside the folder.
  std::filesystem::path path_of(const std::string& key) const;
  // Whether `path` resolves (symbolic links followed) to something below the folder.
  bool inside_root(const std::filesystem::path& path) const;
  std::filesystem::path root_;
};

}  // namespace ddpipe::storage
