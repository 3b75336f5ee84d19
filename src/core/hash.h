// ddpipe::core — content digests (OpenSSL EVP): SHA-256 for content addressing, MD5 for the
// published checksums of third-party archives. Lower-case hex output.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace ddpipe::core {

// Incremental hasher. Not thread-safe; movable.
class Hasher {
 public:
  enum class Algo { kSha256, kMd5 };
  explicit Hasher(Algo algo = Algo::kSha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Finishes and returns the hex digest; the hasher must not be used afterwards.
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
std::string file_digest_hex(const std::filesystem::path& path, Hasher::Algo algo);

}  // namespace ddpipe::core
