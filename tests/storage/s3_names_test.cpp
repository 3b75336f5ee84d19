// Keys on S3 (the test Ceph RGW): every hostile key refused on every operation before a request
// is sent, so that nothing is written anywhere in the bucket and an object beside the store's
// prefix (p/secret, which "../secret" would name once the server or libcurl resolved the dots)
// is never read. The local-folder twin is names_test.cpp.
#include <gtest/gtest.h>

#include "core/error.h"
#include "hostile_keys.h"
#include "s3_test_env.h"
#include "storage/s3_store.h"

namespace ddpipe::storage {
namespace {

TEST(S3StoreNames, EveryHostileKeyIsRefusedAndNothingIsWrittenAnywhere) {
  REQUIRE_S3_SERVER();
  const std::string bucket = testing::unique_bucket("names");
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  S3Store whole("s3://" + bucket, *testing::s3_test_settings());
  whole.put("p/secret", "SECRET");
  S3Store store("s3://" + bucket + "/p/q", *testing::s3_test_settings());
  testing::TempDir scratch;
  testing::expect_store_refuses_hostile_keys(store, scratch.path());
  std::vector<std::string> keys;
  for (const ObjectInfo& o : whole.list("")) keys.push_back(o.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"p/q/ok/x", "p/secret"}));
  EXPECT_EQ(whole.get("p/secret"), "SECRET");
  EXPECT_NE(
      testing::usage_error([&] { store.get("../secret"); }).find("invalid store key '../secret'"),
      std::string::npos);
}

}  // namespace
}  // namespace ddpipe::storage
