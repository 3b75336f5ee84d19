#include <gtest/gtest.h>

#include "core/error.h"
#include "storage/store.h"

namespace ddpipe::storage {
namespace {

TEST(StoreUrl, LocalPathsAndFileUrls) {
  StoreUrl u = parse_store_url("./artifacts");
  EXPECT_FALSE(u.is_s3());
  EXPECT_EQ(u.path, "./artifacts");
  EXPECT_FALSE(u.is_absolute_path());
  EXPECT_EQ(u.str(), "./artifacts");
  EXPECT_EQ(parse_store_url("file:///data/store").path, "/data/store");
  EXPECT_TRUE(parse_store_url("/data/store").is_absolute_path());
  EXPECT_TRUE(parse_store_url("file:///data/store").is_absolute_path());
  EXPECT_FALSE(parse_store_url("~/store").is_absolute_path());
}

TEST(StoreUrl, S3BucketAndPrefix) {
  StoreUrl u = parse_store_url("s3://ddpipe/team/a/");
  EXPECT_TRUE(u.is_s3());
  EXPECT_FALSE(u.is_absolute_path());
  EXPECT_EQ(u.bucket, "ddpipe");
  EXPECT_EQ(u.prefix, "team/a");
  EXPECT_EQ(u.str(), "s3://ddpipe/team/a");
  EXPECT_EQ(parse_store_url("s3://ddpipe").prefix, "");
}

TEST(StoreUrl, BadUrlsNameTheUrl) {
  for (std::string bad : {"ftp://host/x", "", "file://", "s3://Upper/x", "s3://bucket/../x"}) {
    try {
      parse_store_url(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const core::Error& e) {
      EXPECT_EQ(e.kind(), core::ErrorKind::kUsage) << bad;
    }
  }
}

TEST(StoreUrl, ObjectUrlsSplitIntoBucketAndKey) {
  EXPECT_FALSE(parse_object_url("models/m/model_latest"));
  EXPECT_FALSE(parse_object_url("/tmp/file"));
  auto o = parse_object_url("s3://ddpipe/artifacts/models/m/model_latest");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->store, "s3://ddpipe");
  EXPECT_EQ(o->key, "artifacts/models/m/model_latest");
  EXPECT_EQ(parse_object_url("s3://ddpipe")->key, "");
}

}  // namespace
}  // namespace ddpipe::storage
