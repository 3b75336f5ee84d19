// libFuzzer target: the bytes of a shard, an archive and an index.json, which come from the
// store or from the user's disk: shards::scan_tar (a shard in memory), shards::list_tar and
// read_tar_member (an archive on disk: the input is written to a temporary file per run) and
// shards::parse_index. Built with clang under ASan + UBSan; see cmake/DdpipeFuzz.cmake.
//
// Expected refusals are core::Error; anything else escaping is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/error.h"
#include "shards/archive.h"
#include "shards/index.h"
#include "shards/tar.h"

using namespace ddpipe;

namespace {

const std::filesystem::path& archive_path() {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("ddpipe_shards_fuzz_" + std::to_string(getpid()) + ".tar");
  return path;
}

void list_archive(std::string_view bytes) {
  const std::filesystem::path& path = archive_path();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  try {
    for (const shards::ArchiveMember& m : shards::list_tar(path)) {
      shards::read_tar_member(path, m.offset, m.size);
    }
  } catch (const core::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    for (const shards::TarMember& m : shards::scan_tar(in, "fuzz.tar")) {
      if (m.offset + m.size > in.size()) __builtin_trap();  // a member outside the bytes
    }
  } catch (const core::Error&) {
  }
  list_archive(in);
  try {
    shards::parse_index(std::string(in), "fuzz/index.json");
  } catch (const core::Error&) {
  }
  return 0;
}
