#include "core/fs.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "test_util.h"

namespace ddpipe::core {
namespace {

TEST(Fs, AtomicWriteReplacesContent) {
  testing::TempDir dir;
  write_file_atomic(dir / "a/b/c.txt", "one");
  EXPECT_EQ(read_file(dir / "a/b/c.txt"), "one");
  write_file_atomic(dir / "a/b/c.txt", "two");
  EXPECT_EQ(read_file(dir / "a/b/c.txt"), "two");
  for (auto& e : fs::directory_iterator(dir / "a/b")) {
    EXPECT_EQ(e.path().filename(), "c.txt") << "temporary file left behind";
  }
}

TEST(Fs, ReadMissingFileNamesPath) {
  testing::TempDir dir;
  try {
    read_file(dir / "missing.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kStorage);
    EXPECT_NE(std::string(e.what()).find("missing.bin"), std::string::npos);
  }
}

TEST(Fs, ExpandUser) {
  setenv("HOME", "/home/x", 1);
  EXPECT_EQ(expand_user("~/a"), fs::path("/home/x/a"));
  EXPECT_EQ(expand_user("/abs"), fs::path("/abs"));
}

}  // namespace
}  // namespace ddpipe::core
