#include "shards/tar.h"

#include <cstring>

#include "core/error.h"

namespace ddpipe::shards {
namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxSize = 077777777777ULL;  // 11 octal digits

// Field offsets and widths of a ustar header.
constexpr size_t kName = 0, kMode = 100, kUid = 108, kGid = 116, kSize = 124, kMtime = 136,
                 kChksum = 148, kType = 156, kMagic = 257, kVersion = 263, kPrefix = 345;

void put_octal(char* field, size_t width, uint64_t value) {
  // width - 1 digits, zero-padded, then NUL.
  for (size_t i = width - 1; i-- > 0; value >>= 3) field[i] = static_cast<char>('0' + (value & 7));
  field[width - 1] = '\0';
}

uint64_t checksum(const char* header) {
  uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    const bool in_chksum = i >= kChksum && i < kChksum + 8;
    sum += in_chksum ? ' ' : static_cast<unsigned char>(header[i]);
  }
  return sum;
}

void check_name(const std::string& name) {
  bool safe = !name.empty() && name.front() != '/' && name.back() != '/';
  for (unsigned char c : name) safe = safe && c >= 0x20 && c < 0x7f;
  safe = safe && ("/" + name + "/").find("/../") == std::string::npos;
  if (!safe)
    core::fail_usage("tar member name '" + name + "' is empty, absolute, non-ASCII or has ..");
}

// Splits `name` into ustar's (prefix, name) fields; throws kUsage when it does not fit.
std::pair<std::string, std::string> split_name(const std::string& name) {
  if (name.size() <= 100) return {"", name};
  for (size_t slash = name.find('/'); slash != std::string::npos;
       slash = name.find('/', slash + 1)) {
    if (slash <= 155 && name.size() - slash - 1 <= 100) {
      return {name.substr(0, slash), name.substr(slash + 1)};
    }
  }
  core::fail_usage("tar member name '" + name +
                   "' is too long for ustar (100 bytes, or 255 split at a '/')");
}

std::string header_for(const std::string& name, uint64_t size) {
  check_name(name);
  if (size > kMaxSize) {
    core::fail_usage("tar member '" + name + "' has " + std::to_string(size) +
                     " bytes, over ustar's limit of 8 GiB");
  }
  const auto [prefix, base] = split_name(name);
  std::string h(kBlock, '\0');
  std::memcpy(&h[kName], base.data(), base.size());
  put_octal(&h[kMode], 8, 0644);
  put_octal(&h[kUid], 8, 0);
  put_octal(&h[kGid], 8, 0);
  put_octal(&h[kSize], 12, size);
  put_octal(&h[kMtime], 12, 0);
  h[kType] = '0';
  std::memcpy(&h[kMagic], "ustar", 6);  // with its NUL
  std::memcpy(&h[kVersion], "00", 2);
  std::memcpy(&h[kPrefix], prefix.data(), prefix.size());
  put_octal(&h[kChksum], 7, checksum(h.data()));  // six digits, NUL, then a space
  h[kChksum + 7] = ' ';
  return h;
}

uint64_t padding(uint64_t size) { return (kBlock - size % kBlock) % kBlock; }

}  // namespace

TarWriter::TarWriter(std::string& out) : out_(&out) {}

TarWriter::TarWriter(const std::filesystem::path& path)
    : file_(path, std::ios::binary | std::ios::trunc), path_(path) {
  if (!file_) core::fail_storage("cannot create " + path.string());
}

void TarWriter::write(std::string_view bytes) {
  size_ += bytes.size();
  if (out_) {
    out_->append(bytes);
    return;
  }
  file_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file_) core::fail_storage("writing " + path_.string() + " failed");
}

void TarWriter::add(const std::string& name, std::string_view bytes) {
  write(header_for(name, bytes.size()));
  write(bytes);
  write(std::string(padding(bytes.size()), '\0'));
}

void TarWriter::finish() {
  write(std::string(2 * kBlock, '\0'));
  if (!out_) {
    file_.flush();
    if (!file_) core::fail_storage("writing " + path_.string() + " failed");
  }
}

uint64_t tar_member_bytes(uint64_t data_size) { return kBlock + data_size + padding(data_size); }

namespace {

// An octal field: optional leading spaces, digits, then NUL/space or the field's end.
bool parse_octal(const char* field, size_t width, uint64_t& value) {
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  const size_t first = i;
  value = 0;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) value = value * 8 + (field[i] - '0');
  for (size_t j = i; j < width; ++j) {
    if (field[j] != '\0' && field[j] != ' ') return false;
  }
  return i > first;
}

std::string field_string(const char* field, size_t width) {
  return std::string(field, strnlen(field, width));
}

bool all_zero(const char* block) {
  for (size_t i = 0; i < kBlock; ++i) {
    if (block[i] != '\0') return false;
  }
  return true;
}

std::string member_name(const char* h) {
  const std::string prefix = field_string(h + kPrefix, 155), name = field_string(h + kName, 100);
  return prefix.empty() ? name : prefix + "/" + name;
}

// Checks one header block at `at` and returns its member; `what` names it in errors.
TarMember read_header(std::string_view bytes, uint64_t at, const std::string& origin) {
  const char* h = bytes.data() + at;
  const std::string where =
      origin + ": tar member '" + member_name(h) + "' (header at byte " + std::to_string(at) + ")";
  uint64_t stored = 0;
  if (!parse_octal(h + kChksum, 8, stored) || stored != checksum(h)) {
    core::fail_data(where + ": bad header checksum (expected " + std::to_string(checksum(h)) +
                    ", the header says " + field_string(h + kChksum, 8) +
                    "): not a tar file, or corrupt");
  }
  if (std::memcmp(h + kMagic, "ustar", 5) != 0) {
    core::fail_data(where + ": not a POSIX ustar header (magic '" + field_string(h + kMagic, 6) +
                    "')");
  }
  if (h[kType] != '0' && h[kType] != '\0') {
    core::fail_data(where + ": type '" + std::string(1, h[kType]) +
                    "' is not a regular file (a shard holds regular files only)");
  }
  TarMember m{member_name(h), at + kBlock, 0};
  if (!parse_octal(h + kSize, 12, m.size)) core::fail_data(where + ": bad size field");
  if (m.offset + m.size > bytes.size()) {
    core::fail_data(where + ": truncated: " + std::to_string(m.size) + " bytes of data, " +
                    std::to_string(bytes.size() - m.offset) + " left in the archive");
  }
  return m;
}

}  // namespace

std::vector<TarMember> scan_tar(std::string_view bytes, const std::string& origin) {
  if (bytes.size() % kBlock != 0) {
    core::fail_data(origin + ": " + std::to_string(bytes.size()) +
                    " bytes is not a whole number of 512-byte tar blocks (truncated?)");
  }
  std::vector<TarMember> members;
  uint64_t at = 0;
  while (at < bytes.size() && !all_zero(bytes.data() + at)) {
    members.push_back(read_header(bytes, at, origin));
    at = members.back().offset + members.back().size + padding(members.back().size);
  }
  if (at >= bytes.size()) {
    core::fail_data(origin + (members.empty() ? std::string(": empty, not a tar archive")
                                              : ": no end-of-archive marker after member '" +
                                                    members.back().name + "' (truncated?)"));
  }
  return members;
}

}  // namespace ddpipe::shards
