// shards/archive.h against Python's tarfile, which wrote the archives: the same regular files,
// offsets, sizes and times in ustar, GNU and pax formats (long names, a directory, a symlink, an
// empty file); compressed and broken archives refused with what is wrong and where.
#include "shards/archive.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "fixtures.h"
#include "test_util.h"

namespace ddpipe::shards {
namespace {

namespace fs = std::filesystem;
using core::ErrorKind;
using ddpipe::testing::error_of;

// Writes DIR/<format>.tar with tarfile and prints its regular members as JSON.
constexpr const char* kWriteTar = R"PY(
import io, json, sys, tarfile
path, fmt = sys.argv[1], {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT,
                          "pax": tarfile.PAX_FORMAT}[sys.argv[2]]
long = "classes/" + "a_rather_long_folder_name_" * 4 + "/" + "x" * 60 + ".png"
files = {"cat/1.png": b"\x89PNG one", "cat/2.jpg": b"\xff\xd8\xff" + bytes(range(256)) * 4100,
         "dog/empty.png": b"", long: b"long name"}
if fmt == tarfile.PAX_FORMAT:
    files["dog/caf\u00e9.png"] = b"pax: utf-8 name"
with tarfile.open(path, "w", format=fmt) as t:
    d = tarfile.TarInfo("cat"); d.type = tarfile.DIRTYPE; t.addfile(d)
    for name, data in files.items():
        info = tarfile.TarInfo(name); info.size = len(data); info.mtime = 1700000000 + len(name)
        t.addfile(info, io.BytesIO(data))
    s = tarfile.TarInfo("cat/link.png"); s.type = tarfile.SYMTYPE; s.linkname = "1.png"
    t.addfile(s)
with tarfile.open(path) as t:
    print(json.dumps([{"name": m.name, "offset": m.offset_data, "size": m.size,
                       "mtime": int(m.mtime)} for m in t.getmembers() if m.isreg()]))
)PY";

nlohmann::json python_tar(const fs::path& dir, const std::string& format) {
  ddpipe::testing::write_bytes(dir / "write_tar.py", kWriteTar);
  const auto r =
      ddpipe::testing::run_command("/usr/bin/python3 " + (dir / "write_tar.py").string() + " " +
                                   (dir / (format + ".tar")).string() + " " + format);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output);
}

TEST(Archive, RegularFilesAsPythonTarfileSeesThemInEveryFormat) {
  ddpipe::testing::TempDir dir;
  for (const std::string format : {"ustar", "gnu", "pax"}) {
    const nlohmann::json want = python_tar(dir.path(), format);
    const fs::path tar = dir / (format + ".tar");
    const std::vector<ArchiveMember> got = list_tar(tar);
    ASSERT_EQ(got.size(), want.size()) << format;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].name, want[i]["name"]) << format;
      EXPECT_EQ(got[i].offset, want[i]["offset"]) << format << " " << got[i].name;
      EXPECT_EQ(got[i].size, want[i]["size"]) << format << " " << got[i].name;
      EXPECT_EQ(got[i].mtime, want[i]["mtime"]) << format << " " << got[i].name;
    }
    EXPECT_EQ(read_tar_member(tar, got[0].offset, got[0].size), "\x89PNG one");
    EXPECT_EQ(read_tar_member(tar, got[1].offset, got[1].size).size(), 3u + 256 * 4100);
  }
}

TEST(Archive, CompressedArchivesAreRefusedWithTheCommandThatDecompresses) {
  ddpipe::testing::TempDir dir;
  python_tar(dir.path(), "gnu");
  const auto r = ddpipe::testing::run_command("gzip -k " + (dir / "gnu.tar").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string e = error_of(ErrorKind::kData, [&] { list_tar(dir / "gnu.tar.gz"); });
  EXPECT_NE(e.find("gzip-compressed"), std::string::npos) << e;
  EXPECT_NE(e.find("gunzip -k " + (dir / "gnu.tar.gz").string()), std::string::npos) << e;
}

TEST(Archive, BrokenArchivesNameTheArchiveAndTheOffset) {
  ddpipe::testing::TempDir dir;
  const auto members = [&] { return python_tar(dir.path(), "gnu"); }();
  const std::string good = core::read_file(dir / "gnu.tar");
  auto expect_refused = [&](const std::string& bytes, const std::string& what) {
    ddpipe::testing::write_bytes(dir / "bad.tar", bytes);
    const std::string e = error_of(ErrorKind::kData, [&] { list_tar(dir / "bad.tar"); });
    EXPECT_NE(e.find((dir / "bad.tar").string()), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
  };
  const uint64_t big_offset = members[1]["offset"];
  expect_refused(good.substr(0, big_offset + 1000), "truncated inside member 'cat/2.jpg'");
  std::string flipped = good;
  flipped[big_offset - 512 + 3] ^= 0x20;  // a byte of cat/2.jpg's header name
  expect_refused(flipped,
                 "at byte " + std::to_string(big_offset - 512) + ": a tar header's checksum");
  expect_refused(std::string(2048, 'x'), "not a tar archive");

  // A member that would leave the folder it is extracted to.
  ddpipe::testing::write_bytes(dir / "evil.py", R"PY(
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    i = tarfile.TarInfo("cat/../../evil.png"); i.size = 1; t.addfile(i, io.BytesIO(b"x"))
)PY");
  ASSERT_EQ(ddpipe::testing::run_command("/usr/bin/python3 " + (dir / "evil.py").string() + " " +
                                         (dir / "evil.tar").string())
                .exit_code,
            0);
  const std::string e = error_of(ErrorKind::kData, [&] { list_tar(dir / "evil.tar"); });
  EXPECT_NE(e.find("leaves the archive"), std::string::npos) << e;
}

// Found by tests/shards/fuzz: a pax size near 2^64 (or negative, which stoull wraps) passed the
// truncation check by overflow and made the walk loop in place; a pax mtime of 1e300 or nan was
// converted to int64_t (undefined). Both are now refused as bad data naming the archive.
TEST(Archive, PaxSizesAndTimesOutOfRangeAreRefused) {
  ddpipe::testing::TempDir dir;
  ddpipe::testing::write_bytes(dir / "pax.py", R"PY(
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    i = tarfile.TarInfo("a.png"); i.size = 3; i.pax_headers = {sys.argv[2]: sys.argv[3]}
    t.addfile(i, io.BytesIO(b"abc"))
)PY");
  auto expect_refused = [&](const std::string& key, const std::string& value,
                            const std::string& what) {
    const fs::path tar = dir / "pax.tar";
    ASSERT_EQ(ddpipe::testing::run_command("/usr/bin/python3 " + (dir / "pax.py").string() + " " +
                                           tar.string() + " " + key + " " + value)
                  .exit_code,
              0);
    const std::string e = error_of(ErrorKind::kData, [&] { list_tar(tar); });
    EXPECT_NE(e.find(tar.string()), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
  };
  expect_refused("size", "18446744073709551104", "truncated inside member 'a.png'");
  expect_refused("size", "-512", "truncated inside member 'a.png'");
  expect_refused("mtime", "1e300", "pax record mtime is not a number in range");
  expect_refused("mtime", "nan", "pax record mtime is not a number in range");
}

}  // namespace
}  // namespace ddpipe::shards
