// S3 faults on a real server: radosgw killed (and restarted) during a multipart upload, an outage
// during a model publish, and a paused radosgw. These stop the shared test server, so ctest runs
// them alone (RUN_SERIAL); every test leaves radosgw running.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <future>
#include <thread>

#include "core/error.h"
#include "registry/registry.h"
#include "s3_test_env.h"
#include "storage/s3_store.h"

namespace ddpipe::storage {
namespace {

using Clock = std::chrono::steady_clock;

// Starts radosgw again when the test ends, however it ends.
struct RestartRadosgwAtEnd {
  ~RestartRadosgwAtEnd() {
    auto r = testing::s3_server_script("rgw-start");
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }
};

// Holds radosgw stopped with SIGSTOP; SIGCONT when it goes away.
class PausedRadosgw {
 public:
  PausedRadosgw() : pid_(testing::radosgw_pid()) {
    EXPECT_GT(pid_, 0);
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  ~PausedRadosgw() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

 private:
  int pid_;
};

// Waits until a multipart upload is in progress in `bucket`, then kills radosgw (SIGKILL).
void kill_radosgw_during_upload(const S3Settings& settings, const std::string& bucket) {
  S3Client monitor(settings);
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    try {
      if (!monitor.list_multipart_uploads(bucket, "").empty()) break;
    } catch (const S3Error&) {  // the bucket is being created
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_LT(Clock::now(), deadline) << "the upload never started";
  int pid = testing::radosgw_pid();
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

TEST(S3Faults, RadosgwRestartDuringMultipartUploadIsRetried) {
  REQUIRE_S3_SERVER();
  RestartRadosgwAtEnd restart;
  auto settings = *testing::s3_test_settings();
  settings.parallel_parts = 1;
  settings.max_retries = 8;  // back-off: about 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s and more
  S3Store store("s3://" + testing::unique_bucket("restart"), settings);
  testing::EmptyBucketAtEnd cleanup(settings, store.bucket());
  store.put("marker", "m");
  const std::string data = testing::random_bytes(60u << 20, 11);
  auto upload = std::async(std::launch::async, [&] { store.put("big", data); });
  kill_radosgw_during_upload(settings, store.bucket());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto r = testing::s3_server_script("rgw-start");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_NO_THROW(upload.get());
  EXPECT_TRUE(store.get("big") == data);
  EXPECT_TRUE(store.client().list_multipart_uploads(store.bucket(), "").empty());
}

TEST(S3Faults, OutageDuringPublishKeepsThePreviousVersion) {
  REQUIRE_S3_SERVER();
  RestartRadosgwAtEnd restart;
  auto settings = *testing::s3_test_settings();
  settings.parallel_parts = 1;
  settings.max_retries = 1;
  S3Store store("s3://" + testing::unique_bucket("outage") + "/artifacts", settings);
  testing::EmptyBucketAtEnd cleanup(settings, store.bucket());  // and the upload left behind
  registry::Registry reg(store);
  const std::string v1 = reg.publish("m", {{"model.pt", "v1 weights"}}, {{"note", "v1"}});

  auto publish = std::async(std::launch::async, [&]() -> std::optional<core::Error> {
    try {
      reg.publish("m", {{"model.pt", testing::random_bytes(40u << 20, 12)}}, {{"note", "v2"}});
    } catch (const core::Error& e) {
      return e;
    }
    return std::nullopt;
  });
  kill_radosgw_during_upload(settings, store.bucket());
  std::optional<core::Error> error = publish.get();
  ASSERT_TRUE(error) << "the publish succeeded although radosgw was down";
  std::string m = error->what();
  EXPECT_EQ(error->kind(), core::ErrorKind::kRetryable) << m;
  EXPECT_NE(m.find("s3://" + store.bucket() + "/artifacts/models/m/model_v"), std::string::npos)
      << m;
  EXPECT_NE(m.find("/model.pt"), std::string::npos) << m;
  EXPECT_NE(m.find("after 2 attempts"), std::string::npos) << m;

  auto r = testing::s3_server_script("rgw-start");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(reg.resolve("m", "latest"), v1);
  EXPECT_EQ(reg.versions("m"), std::vector<std::string>{v1});
  for (const auto& o : store.list("models/m/")) {
    EXPECT_TRUE(o.key.rfind("models/m/" + v1 + "/", 0) == 0 || o.key == "models/m/model_latest" ||
                o.key.rfind("models/m/alias_history/model_latest/", 0) == 0)
        << "a partial object became visible: " << o.key;
  }
}

TEST(S3Faults, PausedRadosgwTimesOutWithinTheLimit) {
  REQUIRE_S3_SERVER();
  auto settings = *testing::s3_test_settings();
  settings.timeout_s = 2;
  settings.max_retries = 0;
  S3Store store("s3://" + testing::unique_bucket("pause"), settings);
  store.put("a", "x");
  {
    PausedRadosgw pause;
    auto t0 = Clock::now();
    try {
      store.exists("a");
      ADD_FAILURE() << "a paused server answered";
    } catch (const core::Error& e) {
      double took = seconds_since(t0);
      std::string m = e.what();
      EXPECT_EQ(e.kind(), core::ErrorKind::kRetryable) << m;
      EXPECT_NE(
          m.find("HeadObject s3://" + store.bucket() + "/a: no response within 2 s (s3.timeout_s)"),
          std::string::npos)
          << m;
      EXPECT_GE(took, 1.5);
      EXPECT_LE(took, 4.0);
    }

    auto retrying = settings;
    retrying.max_retries = 1;
    S3Store again("s3://" + store.bucket(), retrying);
    t0 = Clock::now();
    try {
      again.get("a");
      ADD_FAILURE() << "a paused server answered";
    } catch (const core::Error& e) {
      double took = seconds_since(t0);
      EXPECT_NE(std::string(e.what()).find("(after 2 attempts)"), std::string::npos) << e.what();
      EXPECT_GE(took, 3.5);
      EXPECT_LE(took, 7.0);
    }

    auto cli = testing::run_command(testing::s3_env_prefix() + testing::ddpipe_binary() +
                                    " store ls --store s3://" + store.bucket() +
                                    " --set s3.timeout_s=2 --set s3.max_retries=0");
    EXPECT_EQ(cli.exit_code, 128) << cli.output;
    EXPECT_NE(cli.output.find("no response within 2 s"), std::string::npos) << cli.output;
  }
  EXPECT_EQ(store.get("a"), "x");  // answers again after SIGCONT
}

}  // namespace
}  // namespace ddpipe::storage
