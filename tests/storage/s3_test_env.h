// The S3 test server for tests: scripts/s3-test-server.sh (Ceph RGW on 127.0.0.1) exports
// DDPIPE_S3_TEST_{ENDPOINT,ACCESS_KEY_ID,SECRET_ACCESS_KEY,REGION,DIR}; without them the S3
// tests fail with a message saying how to start one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "storage/s3_client.h"
#include "test_util.h"

namespace ddpipe::testing {

// Settings for the test server (small parts so that multipart paths run), or nullopt.
std::optional<storage::S3Settings> s3_test_settings();

// Without a server the test fails (./run-tests.sh and .ci/run start one). These tests carry
// the ctest label `s3`; DDPIPE_S3_TESTS=0 ./run-tests.sh leaves them out (`ctest -LE s3`).
#define REQUIRE_S3_SERVER()                                                            \
  if (!::ddpipe::testing::s3_test_settings())                                          \
  FAIL() << "no S3 test server: DDPIPE_S3_TEST_ENDPOINT is unset (./run-tests.sh and " \
            ".ci/run start one; by hand: eval \"$(scripts/s3-test-server.sh start)\")"

// A bucket name no other test (or test process) uses.
std::string unique_bucket(const std::string& tag);
// Deletes every object and aborts every upload in a bucket when it goes away, so that a test
// server reused across runs does not fill up (memstore keeps objects in RAM).
class EmptyBucketAtEnd {
 public:
  EmptyBucketAtEnd(storage::S3Settings settings, std::string bucket)
      : settings_(std::move(settings)), bucket_(std::move(bucket)) {}
  ~EmptyBucketAtEnd();

 private:
  storage::S3Settings settings_;
  std::string bucket_;
};
// "AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_ENDPOINT_URL_S3=… AWS_REGION=… " for a
// ddpipe command line run through the shell.
std::string s3_env_prefix();
// Runs scripts/s3-test-server.sh with `args` on the test server's directory.
CommandResult s3_server_script(const std::string& args);
// The radosgw process id of the test server.
int radosgw_pid();

// /usr/bin/python3 can import boto3 (Debian python3-boto3).
bool boto3_available();
#define REQUIRE_BOTO3()                                                               \
  if (!::ddpipe::testing::boto3_available())                                          \
  FAIL() << "/usr/bin/python3 cannot import boto3 (scripts/install-deps.sh installs " \
            "python3-boto3)"
// "/usr/bin/python3 …/tests/storage/boto3_helper.py" (see the script for its commands).
std::string boto3_helper();

// n pseudo-random bytes from a seed.
std::string random_bytes(size_t n, uint64_t seed);

}  // namespace ddpipe::testing
