// ddpipe::shards — an uncompressed tar archive read in place: the list of its regular files and
// their bytes, without extracting anything. This is how an image folder packed as one archive
// (`tar cf images.tar images/`) is ingested with bounded memory and no second copy on disk.
//
// Accepted: POSIX ustar, pax (per-member `path`, `size` and `mtime` records; global headers are
// ignored) and GNU tar (long names, base-256 sizes), as `tar` and Python's tarfile write them.
// Directories, links and devices are listed as nothing. A compressed archive (gzip, bzip2, xz,
// zstd) is refused with the command that decompresses it: its members cannot be read in place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ddpipe::shards {

struct ArchiveMember {
  std::string name;     // as stored, without a leading "./"
  uint64_t offset = 0;  // of its first data byte in the archive
  uint64_t size = 0;
  int64_t mtime = 0;  // seconds since the epoch
};

// The regular files of `archive`, in archive order. Throws core::Error(kData) naming the archive
// and the byte offset for a header whose checksum is wrong, a truncated archive, a member name
// that is absolute or has "..", and a compressed or non-tar file.
std::vector<ArchiveMember> list_tar(const std::filesystem::path& archive);

// `size` bytes at `offset` of `archive`. Throws core::Error(kData) when the archive is shorter.
std::string read_tar_member(const std::filesystem::path& archive, uint64_t offset, uint64_t size);

}  // namespace ddpipe::shards
