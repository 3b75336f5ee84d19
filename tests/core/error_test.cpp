#include "core/error.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/fs.h"
#include "test_util.h"

namespace ddpipe::core {
namespace {

constexpr ErrorKind kEveryKind[] = {ErrorKind::kInternal,  ErrorKind::kUsage,    ErrorKind::kData,
                                    ErrorKind::kNotFound,  ErrorKind::kStorage,  ErrorKind::kSystem,
                                    ErrorKind::kRetryable, ErrorKind::kPreempted};

TEST(Error, EveryKindHasItsOwnCodeAndName) {
  std::set<int> codes;
  std::set<std::string> names;
  for (ErrorKind kind : kEveryKind) {
    EXPECT_TRUE(codes.insert(exit_code(kind)).second) << kind_name(kind);
    EXPECT_TRUE(names.insert(kind_name(kind)).second) << kind_name(kind);
  }
  EXPECT_EQ(exit_code(ErrorKind::kInternal), 1);
  EXPECT_EQ(exit_code(ErrorKind::kUsage), 2);
  EXPECT_EQ(exit_code(ErrorKind::kData), 3);
  EXPECT_EQ(exit_code(ErrorKind::kNotFound), 4);
  EXPECT_EQ(exit_code(ErrorKind::kStorage), 5);
  EXPECT_EQ(exit_code(ErrorKind::kRetryable), 128);
  EXPECT_EQ(exit_code(ErrorKind::kPreempted), 143);  // 128 + SIGTERM: retried
  EXPECT_STREQ(kind_name(ErrorKind::kPreempted), "preempted");
}

TEST(Error, SystemIsPermanentCodeSixNamedSystem) {
  EXPECT_EQ(exit_code(ErrorKind::kSystem), 6);
  EXPECT_LT(exit_code(ErrorKind::kSystem), 128) << "1-127 are permanent: not retried";
  EXPECT_STREQ(kind_name(ErrorKind::kSystem), "system");
}

TEST(Error, FailSystemAppendsTheOsError) {
  errno = EAGAIN;
  try {
    fail_system("fork of rank 3");
    FAIL() << "fail_system returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kSystem);
    EXPECT_EQ(std::string(e.what()), std::string("fork of rank 3: ") + std::strerror(EAGAIN));
  }
}

TEST(Error, ErrorFileNamesTheSystemKindAndCode) {
  testing::TempDir dir;
  const std::string file = (dir / "error.json").string();
  ::setenv("TORCHELASTIC_ERROR_FILE", file.c_str(), 1);
  record_error_file("fork: Resource temporarily unavailable", ErrorKind::kSystem);
  ::unsetenv("TORCHELASTIC_ERROR_FILE");
  const auto j = nlohmann::json::parse(read_file(file));
  EXPECT_EQ(j["message"]["message"], "fork: Resource temporarily unavailable");
  EXPECT_EQ(j["message"]["extraInfo"]["kind"], "system");
  EXPECT_EQ(j["message"]["extraInfo"]["exit_code"], 6);
}

}  // namespace
}  // namespace ddpipe::core
