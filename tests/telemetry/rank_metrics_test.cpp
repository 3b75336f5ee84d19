#include "telemetry/rank_metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "capture_stderr.h"
#include "test_util.h"

namespace ddpipe::telemetry {
namespace {

// A TCP socket on 127.0.0.1, bound to `port` (0: any free one) and listening; closed with the
// object.
class Listener {
 public:
  explicit Listener(int port = 0) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    socklen_t len = sizeof a;
    ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), len) == 0 && listen(fd_, 1) == 0 &&
          getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0;
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { close_now(); }
  void close_now() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool ok() const { return ok_; }
  int port() const { return port_; }

 private:
  int fd_;
  bool ok_ = false;
  int port_ = 0;
};

// A port nobody listens on now (bound to port 0, then closed).
int free_port() {
  Listener l;
  EXPECT_TRUE(l.ok());
  return l.port();
}

// GET /metrics over a plain socket (HTTP/1.0: the server closes after the answer). Returns the
// body of a 200 answer, or "" after a recorded failure.
std::string scrape(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    ADD_FAILURE() << "cannot connect to port " << port;
    return "";
  }
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, n);
  close(fd);
  const size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.", 0) != 0 || reply.find(" 200 ") > reply.find("\r\n") ||
      body == std::string::npos) {
    ADD_FAILURE() << "not a 200 answer: " << reply.substr(0, 200);
    return "";
  }
  return reply.substr(body + 4);
}

// The value of the sample `name` whose labels contain `label` (e.g. le="0.005"), or NaN.
double sample(const std::string& text, const std::string& name, const std::string& label = "") {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    if (!label.empty() && line.find(label) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::numeric_limits<double>::quiet_NaN();
}

const RankLabels kLabels{"fmnist", "1", "0"};

TEST(RankMetrics, PortZeroServesNothing) {
  RankMetrics m(0, kLabels);
  EXPECT_FALSE(m.serving());
  EXPECT_EQ(m.port(), 0);
  m.observe_step(0.1, 32);  // no-ops
  m.set_progress(1, 2, 3, 0.5, 100);
  m.add_data_wait(1);
  m.add_comm(1, 2);
  m.observe_checkpoint_upload(1, false);
  m.set_restarts(1);
}

TEST(RankMetrics, ServesEveryFamilyWithTheRankLabels) {
  const int port = free_port();
  RankMetrics m(port, kLabels, "127.0.0.1");
  ASSERT_TRUE(m.serving());
  EXPECT_EQ(m.port(), port);
  const std::string text = scrape(port);
  const std::vector<std::pair<std::string, std::string>> families = {
      {"ddpipe_train_step_seconds", "histogram"},
      {"ddpipe_train_steps_total", "counter"},
      {"ddpipe_train_images_total", "counter"},
      {"ddpipe_train_images_per_second", "gauge"},
      {"ddpipe_train_loss", "gauge"},
      {"ddpipe_train_epoch", "gauge"},
      {"ddpipe_train_step", "gauge"},
      {"ddpipe_train_epoch_steps", "gauge"},
      {"ddpipe_train_data_wait_seconds_total", "counter"},
      {"ddpipe_train_comm_exposed_seconds_total", "counter"},
      {"ddpipe_train_comm_seconds_total", "counter"},
      {"ddpipe_train_checkpoint_upload_seconds", "histogram"},
      {"ddpipe_train_checkpoint_upload_failures_total", "counter"},
      {"ddpipe_train_restarts", "gauge"},
      {"ddpipe_process_resident_memory_bytes", "gauge"}};
  for (const auto& [name, type] : families) {
    EXPECT_NE(text.find("# TYPE " + name + " " + type + "\n"), std::string::npos) << name;
    EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << name;
  }
  EXPECT_NE(text.find("ddpipe_process_resident_memory_bytes{local_rank=\"0\",model=\"fmnist\","
                      "rank=\"1\"} "),
            std::string::npos)
      << text;
  EXPECT_GT(sample(text, "ddpipe_process_resident_memory_bytes"), 1e6);  // this test's own RSS
  EXPECT_NE(text.find("ddpipe_train_steps_total{local_rank=\"0\",model=\"fmnist\",rank=\"1\"} 0"),
            std::string::npos);
}

TEST(RankMetrics, ObservationsShowInTheNextScrape) {
  const int port = free_port();
  RankMetrics m(port, kLabels, "127.0.0.1");
  ASSERT_TRUE(m.serving());
  const std::string before = scrape(port);
  EXPECT_EQ(sample(before, "ddpipe_train_steps_total"), 0);
  m.observe_step(0.004, 32);
  m.observe_step(0.2, 32);
  m.set_progress(3, 120, 469, 0.25, 2713);
  m.add_data_wait(0.5);
  m.add_comm(0.25, 1.5);
  m.add_comm(0.25, 1.5);
  m.observe_checkpoint_upload(2, true);
  m.observe_checkpoint_upload(30, false);
  m.set_restarts(2);
  const std::string t = scrape(port);
  EXPECT_EQ(sample(t, "ddpipe_train_steps_total"), 2) << t;
  EXPECT_EQ(sample(t, "ddpipe_train_images_total"), 64);
  EXPECT_EQ(sample(t, "ddpipe_train_step_seconds_count"), 2);
  EXPECT_NEAR(sample(t, "ddpipe_train_step_seconds_sum"), 0.204, 1e-9);
  EXPECT_EQ(sample(t, "ddpipe_train_step_seconds_bucket", "le=\"0.005\""), 1);
  EXPECT_EQ(sample(t, "ddpipe_train_step_seconds_bucket", "le=\"0.25\""), 2);
  EXPECT_EQ(sample(t, "ddpipe_train_epoch"), 3);
  EXPECT_EQ(sample(t, "ddpipe_train_step"), 120);
  EXPECT_EQ(sample(t, "ddpipe_train_epoch_steps"), 469);
  EXPECT_EQ(sample(t, "ddpipe_train_loss"), 0.25);
  EXPECT_EQ(sample(t, "ddpipe_train_images_per_second"), 2713);
  EXPECT_EQ(sample(t, "ddpipe_train_data_wait_seconds_total"), 0.5);
  EXPECT_EQ(sample(t, "ddpipe_train_comm_exposed_seconds_total"), 0.5);
  EXPECT_EQ(sample(t, "ddpipe_train_comm_seconds_total"), 3);
  EXPECT_EQ(sample(t, "ddpipe_train_checkpoint_upload_seconds_count"), 2);
  EXPECT_EQ(sample(t, "ddpipe_train_checkpoint_upload_seconds_bucket", "le=\"5\""), 1);
  EXPECT_EQ(sample(t, "ddpipe_train_checkpoint_upload_failures_total"), 1);
  EXPECT_EQ(sample(t, "ddpipe_train_restarts"), 2);
}

TEST(RankMetrics, CallsFromSeveralThreadsAllCount) {
  const int port = free_port();
  RankMetrics m(port, kLabels, "127.0.0.1");
  ASSERT_TRUE(m.serving());
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&m] {
      for (int k = 0; k < 1000; ++k) {
        m.observe_step(0.01, 1);
        m.observe_checkpoint_upload(1, k % 2 == 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::string t = scrape(port);
  EXPECT_EQ(sample(t, "ddpipe_train_steps_total"), 4000);
  EXPECT_EQ(sample(t, "ddpipe_train_step_seconds_count"), 4000);
  EXPECT_EQ(sample(t, "ddpipe_train_checkpoint_upload_failures_total"), 2000);
}

TEST(RankMetrics, PortInUseWarnsNamingItAndTrainingGoesOn) {
  Listener taken;
  ASSERT_TRUE(taken.ok());
  std::string log;
  {
    CaptureStderr capture;
    RankMetrics m(taken.port(), kLabels, "127.0.0.1");
    EXPECT_FALSE(m.serving());
    EXPECT_EQ(m.port(), 0);
    m.observe_step(0.1, 32);
    log = capture.text();
  }
  EXPECT_NE(log.find("127.0.0.1:" + std::to_string(taken.port())), std::string::npos) << log;
  EXPECT_NE(log.find("metrics.port"), std::string::npos) << log;
  EXPECT_NE(log.find("warn"), std::string::npos) << log;
}

TEST(RankMetrics, PortOutOfRangeIsAUsageError) {
  EXPECT_NE(ddpipe::testing::usage_error([] { RankMetrics m(70000, kLabels); }).find("70000"),
            std::string::npos);
}

}  // namespace
}  // namespace ddpipe::telemetry
