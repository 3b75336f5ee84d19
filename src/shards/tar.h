// ddpipe::shards — POSIX ustar tar files: what a WebDataset shard is on disk.
//
// The writer emits regular-file members only (mode 0644, uid/gid 0, mtime 0, no user names), so
// the same members always give the same bytes; `tar`, Python's tarfile and the `webdataset`
// module read them. Names are ASCII without "..": up to 100 bytes, or up to 255 split at a '/'
// into ustar's prefix field. The reader accepts exactly what ustar regular files are and
// refuses the rest with core::Error(kData) naming the origin (a shard) and the member.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace ddpipe::shards {

// Appends members to a std::string or to a file. finish() writes the end-of-archive marker
// (two zero blocks); the archive is incomplete without it. Not thread-safe.
class TarWriter {
 public:
  // Appends to `out` (which the caller owns and keeps alive).
  explicit TarWriter(std::string& out);
  // Creates or truncates `path`; throws core::Error(kStorage) when it cannot.
  explicit TarWriter(const std::filesystem::path& path);

  // Throws core::Error(kUsage) for a name that ustar cannot hold or that is unsafe (empty,
  // absolute, "..", non-ASCII) and for members of 8 GiB or more.
  void add(const std::string& name, std::string_view bytes);
  void finish();
  // Bytes written so far.
  uint64_t size() const { return size_; }

 private:
  void write(std::string_view bytes);

  std::string* out_ = nullptr;
  std::ofstream file_;
  std::filesystem::path path_;
  uint64_t size_ = 0;
};

// The bytes one member takes in an archive: its header and its data padded to 512.
uint64_t tar_member_bytes(uint64_t data_size);

struct TarMember {
  std::string name;
  uint64_t offset = 0;  // of the member's data in the archive
  uint64_t size = 0;
};

// The members of an archive, in order. Throws core::Error(kData) naming `origin` and the
// member for a bad header checksum, a non-ustar header, a member that is not a regular file,
// a member whose data runs past the end and an archive not made of 512-byte blocks.
std::vector<TarMember> scan_tar(std::string_view bytes, const std::string& origin);

}  // namespace ddpipe::shards
