// shards/tar.h: a round trip, the real `tar` and Python's tarfile reading what the writer wrote,
// and the reader's errors on corrupt archives.
#include "shards/tar.h"

#include <gtest/gtest.h>

#include "core/fs.h"
#include "core/hash.h"
#include "fixtures.h"
#include "test_util.h"

namespace ddpipe::shards {
namespace {

using core::ErrorKind;
using ddpipe::testing::throws_error;

const std::string kLongName = std::string(120, 'd') + "/" + std::string(90, 'f') + ".png";

std::vector<std::pair<std::string, std::string>> sample_members() {
  std::string big(70000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  return {{"train-0000000000.png", big},
          {"train-0000000000.cls", "3"},
          {"train-0000000001.jpg", std::string(512, 'x')},  // exactly one block
          {"train-0000000001.cls", "12"},
          {"empty.txt", ""},
          {kLongName, "long"}};
}

std::string write_members() {
  std::string tar;
  TarWriter w(tar);
  for (const auto& [name, bytes] : sample_members()) w.add(name, bytes);
  w.finish();
  EXPECT_EQ(w.size(), tar.size());
  return tar;
}

TEST(Tar, RoundTripKeepsNamesOrderAndBytes) {
  const std::string tar = write_members();
  EXPECT_EQ(tar.size() % 512, 0u);
  const auto members = scan_tar(tar, "t.tar");
  const auto expected = sample_members();
  ASSERT_EQ(members.size(), expected.size());
  for (size_t i = 0; i < members.size(); ++i) {
    EXPECT_EQ(members[i].name, expected[i].first);
    EXPECT_EQ(tar.substr(members[i].offset, members[i].size), expected[i].second);
  }
  EXPECT_EQ(tar, write_members()) << "the same members give the same bytes";
  EXPECT_EQ(tar_member_bytes(0), 512u);
  EXPECT_EQ(tar_member_bytes(1), 1024u);
  EXPECT_EQ(tar_member_bytes(512), 1024u);
}

TEST(Tar, FileWriterWritesWhatTheStringWriterDoes) {
  ddpipe::testing::TempDir dir;
  {
    TarWriter w(dir / "a.tar");
    for (const auto& [name, bytes] : sample_members()) w.add(name, bytes);
    w.finish();
  }
  EXPECT_EQ(core::read_file(dir / "a.tar"), write_members());
}

TEST(Tar, TheTarToolListsAndExtractsAShard) {
  ddpipe::testing::TempDir dir;
  ddpipe::testing::write_bytes(dir / "s.tar", write_members());
  const auto list = ddpipe::testing::run_command("tar -tvf " + (dir / "s.tar").string());
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("70000"), std::string::npos) << list.output;
  for (const auto& [name, bytes] : sample_members()) {
    EXPECT_NE(list.output.find(name), std::string::npos) << name << " in\n" << list.output;
  }
  const auto x =
      ddpipe::testing::run_command("mkdir -p " + (dir / "x").string() + " && tar -xf " +
                                   (dir / "s.tar").string() + " -C " + (dir / "x").string());
  ASSERT_EQ(x.exit_code, 0) << x.output;
  for (const auto& [name, bytes] : sample_members()) {
    EXPECT_EQ(core::read_file(dir / "x" / name), bytes) << name;
  }
}

TEST(Tar, PythonTarfileReadsAShard) {
  ddpipe::testing::TempDir dir;
  ddpipe::testing::write_bytes(dir / "s.tar", write_members());
  const std::string script =
      "import hashlib, sys, tarfile\n"
      "with tarfile.open(sys.argv[1], 'r:') as t:\n"
      "    for m in t:\n"
      "        assert m.isfile(), m.name\n"
      "        data = t.extractfile(m).read()\n"
      "        print(m.name, m.size, hashlib.sha256(data).hexdigest())\n";
  ddpipe::testing::write_bytes(dir / "read.py", script);
  const auto r = ddpipe::testing::run_command("/usr/bin/python3 " + (dir / "read.py").string() +
                                              " " + (dir / "s.tar").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string expected;
  for (const auto& [name, bytes] : sample_members()) {
    expected += name + " " + std::to_string(bytes.size()) + " " + core::sha256_hex(bytes) + "\n";
  }
  EXPECT_EQ(r.output, expected);
}

TEST(Tar, CorruptArchivesNameTheShardAndTheMember) {
  const std::string good = write_members();
  std::string bad_sum = good;
  bad_sum[0] ^= 1;  // the first header's name
  EXPECT_TRUE(throws_error([&] { scan_tar(bad_sum, "datasets/d/shards/ab.tar"); }, ErrorKind::kData,
                           {"datasets/d/shards/ab.tar", "bad header checksum"}));
  // The second member's header: after the first (512 + 70000 padded to 70144).
  std::string bad_second = good;
  bad_second[512 + 70144 + 130] ^= 1;  // inside its mode field
  EXPECT_TRUE(throws_error([&] { scan_tar(bad_second, "s.tar"); }, ErrorKind::kData,
                           {"s.tar", "train-0000000000.cls", "bad header checksum"}));
  const std::string truncated = good.substr(0, 512 * 20);
  EXPECT_TRUE(throws_error([&] { scan_tar(truncated, "s.tar"); }, ErrorKind::kData,
                           {"s.tar", "train-0000000000.png", "truncated"}));
  EXPECT_TRUE(throws_error([&] { scan_tar(good.substr(0, 1000), "s.tar"); }, ErrorKind::kData,
                           {"s.tar", "512-byte"}));
  EXPECT_TRUE(throws_error([&] { scan_tar(good.substr(0, good.size() - 1024), "s.tar"); },
                           ErrorKind::kData, {"s.tar", "end-of-archive", kLongName}));
  EXPECT_TRUE(throws_error([&] { scan_tar("", "s.tar"); }, ErrorKind::kData, {"s.tar", "empty"}));
}

TEST(Tar, NonRegularEntriesAreRefused) {
  ddpipe::testing::TempDir dir;
  const auto r = ddpipe::testing::run_command(
      "cd " + dir.path().string() + " && echo hi > f && ln -s f link && mkdir sub && " +
      "tar --format=ustar -cf a.tar f link && tar --format=ustar -cf b.tar sub");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(throws_error([&] { scan_tar(core::read_file(dir / "a.tar"), "a.tar"); },
                           ErrorKind::kData, {"a.tar", "'link'", "not a regular file"}));
  EXPECT_TRUE(throws_error([&] { scan_tar(core::read_file(dir / "b.tar"), "b.tar"); },
                           ErrorKind::kData, {"b.tar", "sub/", "not a regular file"}));
}

TEST(Tar, UnsafeOrOverlongNamesAreUsageErrors) {
  std::string out;
  TarWriter w(out);
  for (const std::string& name :
       std::vector<std::string>{"", "/abs", "a/../b", "..", "caf\xc3\xa9", std::string(101, 'x'),
                                std::string(156, 'p') + "/" + "n"}) {
    EXPECT_TRUE(throws_error([&] { w.add(name, "x"); }, ErrorKind::kUsage, {"tar member"})) << name;
  }
}

}  // namespace
}  // namespace ddpipe::shards
