#include "shards/archive.h"

#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>

#include "core/error.h"

namespace ddpipe::shards {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kBlock = 512;
using Header = std::array<char, kBlock>;

std::string where(const fs::path& archive, uint64_t offset) {
  return "archive " + archive.string() + " at byte " + std::to_string(offset);
}

// The first bytes of compressed files, and how to make a plain tar of them.
void refuse_compressed(const fs::path& archive, std::string_view head) {
  struct Magic {
    std::string_view bytes, name, command;
  };
  static constexpr Magic kMagics[] = {{"\x1f\x8b", "gzip", "gunzip"},
                                      {"BZh", "bzip2", "bunzip2"},
                                      {"\xfd"
                                       "7zXZ",
                                       "xz", "unxz"},
                                      {"\x28\xb5\x2f\xfd", "zstd", "unzstd"}};
  for (const Magic& m : kMagics) {
    if (head.substr(0, m.bytes.size()) == m.bytes) {
      core::fail_data("archive " + archive.string() + " is " + std::string(m.name) +
                      "-compressed: its images cannot be read in place; decompress it first (" +
                      std::string(m.command) + " -k " + archive.string() + ") and ingest the .tar");
    }
  }
}

// A numeric field: octal digits (space/NUL terminated), or GNU's base-256 (high bit set).
uint64_t number(const char* field, size_t length, const fs::path& archive, uint64_t offset) {
  const auto* b = reinterpret_cast<const unsigned char*>(field);
  uint64_t v = 0;
  if (b[0] & 0x80) {
    for (size_t i = 1; i < length; ++i) v = (v << 8) | b[i];
    return v;
  }
  size_t i = 0;
  while (i < length && field[i] == ' ') ++i;
  for (; i < length && field[i] >= '0' && field[i] <= '7'; ++i) v = v * 8 + (field[i] - '0');
  if (i < length && field[i] != ' ' && field[i] != '\0') {
    core::fail_data(where(archive, offset) + ": a tar header's number field is not octal");
  }
  return v;
}

std::string text(const char* field, size_t length) {
  return std::string(field, strnlen(field, length));
}

bool checksum_ok(const Header& h, const fs::path& archive, uint64_t offset) {
  uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i)
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  try {
    return sum == number(h.data() + 148, 8, archive, offset);
  } catch (const core::Error&) {
    return false;  // not even a number where the checksum goes
  }
}

// pax records "<length> <key>=<value>\n": the path, size and mtime overrides.
struct Overrides {
  std::optional<std::string> path;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime;
};

void parse_pax(const std::string& data, Overrides& o, const fs::path& archive, uint64_t offset) {
  size_t at = 0;
  while (at < data.size()) {
    const size_t space = data.find(' ', at);
    size_t length = 0;
    try {
      length = space == std::string::npos ? 0 : std::stoull(data.substr(at, space - at));
    } catch (const std::exception&) {
    }
    if (length == 0 || at + length > data.size()) {
      core::fail_data(where(archive, offset) + ": a malformed pax extended header");
    }
    const std::string record = data.substr(space + 1, at + length - space - 2);
    const size_t eq = record.find('=');
    const std::string key = record.substr(0, eq), value = record.substr(eq + 1);
    try {
      if (key == "path") o.path = value;
      if (key == "size") o.size = std::stoull(value);
      if (key == "mtime") {
        const double seconds = std::stod(value);
        // NaN or beyond int64_t: the conversion would be undefined.
        if (!(std::fabs(seconds) < 9.2e18)) throw std::out_of_range(value);
        o.mtime = static_cast<int64_t>(seconds);
      }
    } catch (const std::exception&) {
      core::fail_data(where(archive, offset) + ": pax record " + key + " is not a number in range");
    }
    at += length;
  }
}

std::string member_name(const Header& h, const Overrides& o) {
  if (o.path) return *o.path;
  std::string name = text(h.data(), 100);
  const bool ustar = std::memcmp(h.data() + 257, "ustar\0", 6) == 0;
  const std::string prefix = ustar ? text(h.data() + 345, 155) : "";
  return prefix.empty() ? name : prefix + "/" + name;
}

void check_name(std::string& name, const fs::path& archive, uint64_t offset) {
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  const bool dotdot = name == ".." || name.rfind("../", 0) == 0 ||
                      name.find("/../") != std::string::npos ||
                      (name.size() >= 3 && name.compare(name.size() - 3, 3, "/..") == 0);
  if (name.empty() || name[0] == '/' || dotdot) {
    core::fail_data(where(archive, offset) + ": member name '" + name +
                    "' is absolute or leaves the archive (..)");
  }
}

// Reads the header block at `offset`; false at the end-of-archive marker or end of file.
bool read_header(std::ifstream& in, uint64_t offset, uint64_t file_size, Header& h,
                 const fs::path& archive) {
  if (offset + kBlock > file_size) {
    if (offset == file_size) return false;  // no end marker: tolerated, as tar does
    core::fail_data(where(archive, offset) + ": the archive is truncated inside a header");
  }
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(h.data(), kBlock);
  if (!in) core::fail_data(where(archive, offset) + ": cannot read");
  for (char c : h)
    if (c) return true;
  return false;
}

}  // namespace

std::vector<ArchiveMember> list_tar(const fs::path& archive) {
  std::ifstream in(archive, std::ios::binary);
  if (!in) core::fail_data("cannot open archive " + archive.string());
  std::error_code ec;
  const uint64_t file_size = fs::file_size(archive, ec);
  if (ec) core::fail_data("cannot read archive " + archive.string() + ": " + ec.message());
  std::vector<ArchiveMember> members;
  Overrides next;
  Header h;
  for (uint64_t offset = 0; read_header(in, offset, file_size, h, archive);) {
    if (offset == 0) refuse_compressed(archive, std::string_view(h.data(), kBlock));
    if (!checksum_ok(h, archive, offset)) {
      core::fail_data(where(archive, offset) +
                      (offset == 0 ? ": not a tar archive (no valid tar header)"
                                   : ": a tar header's checksum is wrong (corrupt archive)"));
    }
    const char type = h[156];
    const uint64_t size = next.size && (type == '0' || type == '\0')
                              ? *next.size
                              : number(h.data() + 124, 12, archive, offset);
    const uint64_t data = offset + kBlock;
    if (size > file_size - data) {  // read_header checked data <= file_size; no overflow
      core::fail_data(where(archive, offset) + ": the archive is truncated inside member '" +
                      member_name(h, next) + "'");
    }
    offset = data + (size + kBlock - 1) / kBlock * kBlock;
    if (type == 'x' || type == 'L') {  // applies to the next member
      std::string body = read_tar_member(archive, data, size);
      if (type == 'L') next.path = std::string(body.c_str());
      if (type == 'x') parse_pax(body, next, archive, data);
      continue;
    }
    if (type == '0' || type == '\0') {
      ArchiveMember m{member_name(h, next), data, size,
                      next.mtime.value_or(static_cast<int64_t>(
                          number(h.data() + 136, 12, archive, data - kBlock)))};
      check_name(m.name, archive, data - kBlock);
      members.push_back(std::move(m));
    }
    next = {};  // directories, links, devices, global headers: nothing to list
  }
  return members;
}

std::string read_tar_member(const fs::path& archive, uint64_t offset, uint64_t size) {
  std::ifstream in(archive, std::ios::binary);
  std::string bytes(size, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (!in) {
    core::fail_data("archive " + archive.string() + ": cannot read " + std::to_string(size) +
                    " bytes at byte " + std::to_string(offset) + " (changed or truncated?)");
  }
  return bytes;
}

}  // namespace ddpipe::shards
