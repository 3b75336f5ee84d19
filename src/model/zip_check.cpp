#include "model/zip_check.h"

#include <c10/util/Exception.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace ddpipe::model {
namespace {

constexpr uint32_t kEndSig = 0x06054b50, kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50,
                   kEntrySig = 0x02014b50, kLocalSig = 0x04034b50;
constexpr size_t kEndSize = 22, kZip64EndSize = 56, kZip64LocatorSize = 20, kEntrySize = 46,
                 kLocalSize = 30;
constexpr uint64_t kDeflateRatio = 1032;               // deflate's largest expansion
constexpr uint64_t kMinVersion = 1, kMaxVersion = 10;  // what libtorch 1.13 reads

// An entry of the central directory.
struct Entry {
  std::string name;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t compressed = 0, size = 0, local = 0;
};

class ZipCheck {
 public:
  ZipCheck(const std::string& bytes, const std::string& where) : b_(bytes), where_(where) {}

  void run() {
    if (b_.compare(0, 8, "PYTORCH1") == 0) fail("an archive of PyTorch's preview release");
    const uint64_t end = find_end();
    uint64_t files = u16(end + 10), on_disk = u16(end + 8), dir_size = u32(end + 12),
             dir = u32(end + 16);
    if (u16(end + 4) != 0 || u16(end + 6) != 0) fail("a multi-disk archive");
    if (end >= kZip64LocatorSize + kZip64EndSize &&
        u32(end - kZip64LocatorSize) == kZip64LocatorSig) {
      const uint64_t z = u64(end - kZip64LocatorSize + 8);
      if (z > b_.size() - kZip64EndSize) fail("its zip64 end record is outside the file");
      if (u32(z) == kZip64EndSig) {
        if (u64(z + 4) < kZip64EndSize - 12 || u32(end - kZip64LocatorSize + 16) != 1 ||
            u32(z + 16) != 0 || u32(z + 20) != 0) {
          fail("its zip64 end record is malformed");
        }
        files = u64(z + 32), on_disk = u64(z + 24), dir_size = u64(z + 40), dir = u64(z + 48);
      }
    }
    if (files == 0 || files != on_disk || files > 0xffffffffu || dir_size > 0xffffffffu) {
      fail("its central directory counts " + std::to_string(files) + " records");
    }
    if (dir_size < files * kEntrySize || dir > b_.size() || dir_size > b_.size() - dir) {
      fail("its central directory is outside the file");
    }
    read_directory(dir, dir_size, files);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    core::fail_data(where_ + ": not a torch zip archive that ddpipe reads: " + what);
  }
  uint64_t le(uint64_t at, size_t n) const {
    if (at > b_.size() || n > b_.size() - at) fail("a record runs past the end of the file");
    uint64_t v = 0;
    std::memcpy(&v, b_.data() + at, n);
    return v;
  }
  uint64_t u16(uint64_t at) const { return le(at, 2); }
  uint64_t u32(uint64_t at) const { return le(at, 4); }
  uint64_t u64(uint64_t at) const { return le(at, 8); }

  // The end of central directory record, searched from the end as miniz does.
  uint64_t find_end() const {
    if (b_.size() < kEndSize) fail("shorter than a zip end record");
    const uint64_t last = b_.size() - kEndSize;
    const uint64_t first = last > 0xffff ? last - 0xffff : 0;
    for (uint64_t at = last + 1; at-- > first;) {
      if (u32(at) == kEndSig) return at;
    }
    fail("no zip end of central directory record");
  }

  void read_directory(uint64_t at, uint64_t dir_size, uint64_t files) {
    const uint64_t dir_end = at + dir_size;
    std::string top;
    std::vector<Entry> entries;
    entries.reserve(files);  // files * 46 <= dir_size <= the file's size
    for (uint64_t i = 0; i < files; ++i) {
      entries.push_back(entry(at, dir_end));
      if (i == 0) {
        const size_t slash = entries[0].name.find('/');
        if (slash == std::string::npos) fail("its first record is in no folder");
        top = entries[0].name.substr(0, slash + 1);
      }
    }
    const Entry* version = nullptr;  // libtorch takes .data/version when both exist
    for (const Entry& e : entries) {
      if (e.name == top + ".data/version") version = &e;
      if (e.name == top + "version" && !version) version = &e;
    }
    if (!version) fail("no version record");
    for (const Entry& e : entries) check_crc(e);
    check_version(*version);
  }

  // The central directory entry at `at` (moved past it).
  Entry entry(uint64_t& at, uint64_t dir_end) {
    if (dir_end - at < kEntrySize || u32(at) != kEntrySig) fail("a malformed central directory");
    Entry e;
    e.method = static_cast<uint16_t>(u16(at + 10));
    e.crc = static_cast<uint32_t>(u32(at + 16));
    e.compressed = u32(at + 20), e.size = u32(at + 24), e.local = u32(at + 42);
    const uint64_t flags = u16(at + 8), name = u16(at + 28),
                   extra_and_comment = u16(at + 30) + u16(at + 32), disk = u16(at + 34);
    if (dir_end - at - kEntrySize < name + extra_and_comment || name == 0) {
      fail("a malformed central directory entry");
    }
    e.name = b_.substr(at + kEntrySize, name);
    at += kEntrySize + name + extra_and_comment;
    const auto what = [&](const std::string& s) { fail("record " + e.name + ": " + s); };
    if (disk != 0 || (flags & 0x2061) != 0) what("encrypted, patched or on another disk");
    if (e.compressed == 0xffffffffu || e.size == 0xffffffffu || e.local == 0xffffffffu) {
      what("4 GiB or larger (zip64 records are not read)");
    }
    if (e.method != 0 && e.method != 8) what("compressed with method " + std::to_string(e.method));
    if ((e.method == 0 && e.size != e.compressed) ||
        (e.method == 8 && e.size > e.compressed * kDeflateRatio) || (e.size && !e.compressed)) {
      what("declares " + std::to_string(e.size) + " bytes from " + std::to_string(e.compressed));
    }
    if (e.local > b_.size() || kLocalSize + e.compressed > b_.size() - e.local) {
      what("its data is outside the file");
    }
    return e;
  }

  // A record's data, after its local header.
  std::string_view data_of(const Entry& e) const {
    if (u32(e.local) != kLocalSig) fail("record " + e.name + " has no local header");
    const uint64_t data = e.local + kLocalSize + u16(e.local + 26) + u16(e.local + 28);
    if (data > b_.size() || e.compressed > b_.size() - data) {
      fail("record " + e.name + ": its data is outside the file");
    }
    return std::string_view(b_).substr(data, e.compressed);
  }

  // The record's bytes (inflated when deflated) must have its CRC-32: libtorch's reader does
  // not check it, and parses corrupt bytes (a crash in its TorchScript reader).
  void check_crc(const Entry& e) const {
    std::string_view data = data_of(e);
    std::string inflated;
    if (e.method == 8) {
      inflated.resize(e.size);  // at most kDeflateRatio times the record's bytes
      z_stream z{};
      if (inflateInit2(&z, -MAX_WBITS) != Z_OK) fail("zlib cannot inflate");
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
      z.avail_in = static_cast<uInt>(data.size());
      z.next_out = reinterpret_cast<Bytef*>(inflated.data());
      z.avail_out = static_cast<uInt>(inflated.size());
      const int rc = inflate(&z, Z_FINISH);
      const bool whole = rc == Z_STREAM_END && z.avail_out == 0;
      inflateEnd(&z);
      if (!whole) {
        fail("record " + e.name + " does not inflate to its " + std::to_string(e.size) + " bytes");
      }
      data = inflated;
    }
    if (crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())) !=
        e.crc) {
      fail("record " + e.name + " does not match its CRC-32 (the file is corrupt)");
    }
  }

  // The version record, as libtorch reads it while opening the archive.
  void check_version(const Entry& e) const {
    if (e.method != 0 || e.size > 20) fail("an unreadable version record");
    const std::string text(data_of(e));
    uint64_t v = 0;
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
      v = v * 10 + static_cast<uint64_t>(text[digits++] - '0');
    }
    const bool newline = text.size() == digits + 1 && text.back() == '\n';
    if (digits == 0 || digits > 4 || (text.size() != digits && !newline) || v < kMinVersion ||
        v > kMaxVersion) {
      fail("file format version '" + text + "' (libtorch 1.13 reads 1 to 10)");
    }
  }

  const std::string& b_;
  const std::string& where_;
};

}  // namespace

void check_torch_zip(const std::string& bytes, const std::string& where) {
  ZipCheck(bytes, where).run();
}

void rethrow_as_data_error(const std::string& context) {
  try {
    throw;
  } catch (const core::Error&) {
    throw;
  } catch (const c10::Error& e) {
    core::fail_data(context + e.what_without_backtrace());
  } catch (const std::exception& e) {
    core::fail_data(context + e.what());
  }
}

}  // namespace ddpipe::model
