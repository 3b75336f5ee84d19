// S3 settings from config and environment, and the store URL: no server needed.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/config.h"
#include "core/error.h"
#include "storage/s3_store.h"

namespace ddpipe::storage {
namespace {

void clear_aws_env() {
  for (const char* v :
       {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}) {
    ::unsetenv(v);
  }
}

TEST(S3Settings, EnvironmentUnderConfig) {
  clear_aws_env();
  ::setenv("AWS_ENDPOINT_URL", "http://generic:1", 1);
  ::setenv("AWS_ENDPOINT_URL_S3", "http://minio:9000", 1);
  ::setenv("AWS_DEFAULT_REGION", "eu-west-2", 1);
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
  ::setenv("AWS_SESSION_TOKEN", "env-token", 1);
  core::S3Config c;
  S3Settings s = resolve_s3_settings(c);
  EXPECT_EQ(s.endpoint, "http://minio:9000");
  EXPECT_EQ(s.region, "eu-west-2");
  EXPECT_EQ(s.credentials.access_key_id, "AKIDENV");
  EXPECT_EQ(s.credentials.secret_access_key, "env-secret");
  EXPECT_EQ(s.credentials.session_token, "env-token");
  EXPECT_EQ(s.part_size, 16u << 20);
  EXPECT_EQ(s.parallel_parts, 8);

  c.endpoint = "https://s3.example.com";
  c.region = "ap-south-1";
  c.access_key_id = "AKIDCFG";
  c.secret_access_key = "cfg-secret";
  c.part_size_mb = 64;
  c.parallel_parts = 3;
  c.timeout_s = 7;
  c.max_retries = 2;
  c.path_style = false;
  s = resolve_s3_settings(c);
  EXPECT_EQ(s.endpoint, "https://s3.example.com");
  EXPECT_EQ(s.region, "ap-south-1");
  EXPECT_EQ(s.credentials.access_key_id, "AKIDCFG");
  EXPECT_EQ(s.credentials.secret_access_key, "cfg-secret");
  EXPECT_EQ(s.part_size, 64u << 20);
  EXPECT_EQ(s.parallel_parts, 3);
  EXPECT_DOUBLE_EQ(s.timeout_s, 7);
  EXPECT_EQ(s.max_retries, 2);
  EXPECT_FALSE(s.path_style);
}

TEST(S3Settings, DefaultsToAwsAndNeedsCredentials) {
  clear_aws_env();
  core::S3Config c;
  try {
    resolve_s3_settings(c);
    FAIL() << "no error without credentials";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("AWS_ACCESS_KEY_ID"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_store("s3://bucket/x"), core::Error);
  ::setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  S3Settings s = resolve_s3_settings(c);
  EXPECT_EQ(s.region, "us-east-1");
  EXPECT_EQ(s.endpoint, "https://s3.us-east-1.amazonaws.com");
  ::setenv("AWS_REGION", "eu-north-1", 1);
  EXPECT_EQ(resolve_s3_settings(c).endpoint, "https://s3.eu-north-1.amazonaws.com");
}

TEST(S3Store, UrlsAndBadNames) {
  clear_aws_env();
  ::setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  core::S3Config c;
  c.endpoint = "http://127.0.0.1:1";
  EXPECT_EQ(open_store("s3://bucket/a/b/", c)->url(), "s3://bucket/a/b");
  EXPECT_EQ(open_store("s3://bucket", c)->url(), "s3://bucket");
  S3Store store("s3://my-bucket/pre", resolve_s3_settings(c));
  EXPECT_EQ(store.object_key("models/x"), "pre/models/x");
  for (std::string bad : {"s3://", "s3://Upper/x", "s3://ab", "s3://bucket/a//b",
                          "s3://bucket/../x", "s3://-bucket"}) {
    try {
      open_store(bad, c);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const core::Error& e) {
      EXPECT_EQ(e.kind(), core::ErrorKind::kUsage) << bad;
    }
  }
  S3Settings s = resolve_s3_settings(c);
  for (std::string bad : {"ftp://host", "host:9000", "http://host:9000/path"}) {
    s.endpoint = bad;
    EXPECT_THROW(S3Client client(s), core::Error) << bad;
  }
}

// Nothing listens on port 1: a connection error is retried, then reported as retryable with
// the endpoint and the attempts.
TEST(S3Client, UnreachableEndpointIsRetryable) {
  S3Settings s;
  s.endpoint = "http://127.0.0.1:1";
  s.credentials = {"AKID", "secret", ""};
  s.max_retries = 2;
  S3Client client(s);
  try {
    client.head_object("bucket", "key");
    FAIL() << "no error";
  } catch (const S3Error& e) {
    std::string m = e.what();
    EXPECT_EQ(e.kind(), core::ErrorKind::kRetryable) << m;
    EXPECT_EQ(e.status(), 0);
    EXPECT_NE(m.find("HeadObject s3://bucket/key: cannot connect to http://127.0.0.1:1"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("(after 3 attempts)"), std::string::npos) << m;
    EXPECT_EQ(m.find("secret"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ddpipe::storage
