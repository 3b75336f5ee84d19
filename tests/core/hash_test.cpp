#include "core/hash.h"

#include <gtest/gtest.h>

namespace ddpipe::core {
namespace {

TEST(Hash, KnownVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Hasher md5(Hasher::Algo::kMd5);
  md5.update("abc");
  EXPECT_EQ(md5.hex_digest(), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Hash, IncrementalEqualsOneShot) {
  Hasher h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.hex_digest(), sha256_hex("abc"));
}

}  // namespace
}  // namespace ddpipe::core
