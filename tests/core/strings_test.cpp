#include "core/strings.h"

#include <gtest/gtest.h>

namespace ddpipe::core {
namespace {

TEST(Strings, ToLowerFoldsAsciiOnly) {
  EXPECT_EQ(to_lower(""), "");
  EXPECT_EQ(to_lower("Content-Type"), "content-type");
  EXPECT_EQ(to_lower("AZaz09@[`{"), "azaz09@[`{");
  EXPECT_EQ(to_lower("\xc3\x89T\xc3\x89"), "\xc3\x89t\xc3\x89");  // UTF-8 bytes unchanged
  EXPECT_EQ(to_lower(std::string("A\0B", 3)), std::string("a\0b", 3));
}

TEST(Strings, IequalsIgnoresAsciiCase) {
  EXPECT_TRUE(iequals("", ""));
  EXPECT_TRUE(iequals("Content-Disposition", "content-DISPOSITION"));
  EXPECT_FALSE(iequals("name", "names"));
  EXPECT_FALSE(iequals("@", "`"));  // 0x40 and 0x60 differ by the case bit but are not letters
  EXPECT_FALSE(iequals("\xc3\x89", "\xc3\xa9"));
}

}  // namespace
}  // namespace ddpipe::core
