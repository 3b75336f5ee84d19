#include "core/base64.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace ddpipe::core {
namespace {

using testing::usage_error;

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TEST(Base64, EncodesWithPadding) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("h"), "aA==");
  EXPECT_EQ(base64_encode("he"), "aGU=");
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
  EXPECT_EQ(base64_encode("hello!"), "aGVsbG8h");
  EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
}

TEST(Base64, DecodesStandardUrlSafeAndUnpadded) {
  EXPECT_EQ(base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64_decode("aGVsbG8"), "hello");
  EXPECT_EQ(base64_decode("aGVs\nbG8h"), "hello!");
  EXPECT_EQ(base64_decode("-_8="), base64_decode("+/8="));
  EXPECT_EQ(base64_decode(""), "");
  const std::string all = all_bytes();
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
  for (size_t n = 0; n < 8; ++n)
    EXPECT_EQ(base64_decode(base64_encode(all.substr(0, n))), all.substr(0, n));
  EXPECT_NE(usage_error([] { base64_decode("aGV*bG8="); }).find("offset 3"), std::string::npos);
  EXPECT_NE(usage_error([] { base64_decode("aGVsbG8=x"); }).find("invalid character"),
            std::string::npos);
  EXPECT_NE(usage_error([] { base64_decode("aGVsbG8==="); }).find("too much padding"),
            std::string::npos);
  EXPECT_NE(usage_error([] { base64_decode("a"); }).find("middle of a byte"), std::string::npos);
}

}  // namespace
}  // namespace ddpipe::core
