#include "s3_test_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace ddpipe::testing {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

std::optional<storage::S3Settings> s3_test_settings() {
  if (env("DDPIPE_S3_TEST_ENDPOINT").empty()) return std::nullopt;
  storage::S3Settings s;
  s.endpoint = env("DDPIPE_S3_TEST_ENDPOINT");
  s.region = env("DDPIPE_S3_TEST_REGION").empty() ? "us-east-1" : env("DDPIPE_S3_TEST_REGION");
  s.credentials = {env("DDPIPE_S3_TEST_ACCESS_KEY_ID"), env("DDPIPE_S3_TEST_SECRET_ACCESS_KEY"),
                   ""};
  s.part_size = 5u << 20;  // S3's smallest part: a few MiB already take the multipart path
  s.parallel_parts = 4;
  s.timeout_s = 20;
  s.max_retries = 3;
  return s;
}

std::string unique_bucket(const std::string& tag) {
  static std::atomic<int> counter{0};
  std::mt19937_64 rng(std::random_device{}());
  return "t-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(rng() % 100000);
}

EmptyBucketAtEnd::~EmptyBucketAtEnd() {
  try {
    storage::S3Client client(settings_);
    for (const auto& [key, id] : client.list_multipart_uploads(bucket_, "")) {
      client.abort_multipart_upload(bucket_, key, id);
    }
    for (const auto& o : client.list_objects(bucket_, "")) client.delete_object(bucket_, o.key);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "could not empty test bucket %s: %s\n", bucket_.c_str(), e.what());
  }
}

std::string s3_env_prefix() {
  return "AWS_ACCESS_KEY_ID=" + env("DDPIPE_S3_TEST_ACCESS_KEY_ID") +
         " AWS_SECRET_ACCESS_KEY=" + env("DDPIPE_S3_TEST_SECRET_ACCESS_KEY") +
         " AWS_ENDPOINT_URL_S3=" + env("DDPIPE_S3_TEST_ENDPOINT") + " AWS_REGION=" +
         (env("DDPIPE_S3_TEST_REGION").empty() ? "us-east-1" : env("DDPIPE_S3_TEST_REGION")) +
         " AWS_SESSION_TOKEN= ";
}

CommandResult s3_server_script(const std::string& args) {
  return run_command("DDPIPE_S3_DIR=" + env("DDPIPE_S3_TEST_DIR") +
                     " " DDPIPE_SOURCE_DIR "/scripts/s3-test-server.sh " + args);
}

int radosgw_pid() { return std::atoi(s3_server_script("rgw-pid").output.c_str()); }

bool boto3_available() {
  static int cached = -1;
  if (cached < 0)
    cached = run_command("/usr/bin/python3 -c 'import boto3' >/dev/null").exit_code == 0;
  return cached == 1;
}

std::string boto3_helper() {
  return "/usr/bin/python3 " DDPIPE_SOURCE_DIR "/tests/storage/boto3_helper.py";
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<char>(v >> (8 * j));
  }
  return out;
}

}  // namespace ddpipe::testing
