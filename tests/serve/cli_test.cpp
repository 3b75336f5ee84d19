// `ddpipe serve`, the real binary: the documented curl call, agreement with `ddpipe predict`,
// SIGTERM draining, command-line errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/fs.h"
#include "fixtures.h"
#include "http_client.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::serve {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::run_command;

// `ddpipe serve …` as a child process with its log in a file.
class ServeProcess {
 public:
  ServeProcess(const std::vector<std::string>& args, fs::path log) : log_(std::move(log)) {
    std::vector<std::string> argv = {testing::ddpipe_binary(), "serve"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, STDERR_FILENO);
      setenv("DDPIPE_LOG_LEVEL", "info",
             1);  // the port, drain and access lines are info (CI: warn)
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      execv(c[0], c.data());
      _exit(127);
    }
  }
  ~ServeProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // The port from the "listening" log line, or 0.
  int wait_port() {
    for (int i = 0; i < 600; ++i) {
      std::istringstream lines(log());
      for (std::string line; std::getline(lines, line);) {
        if (line.find("\"msg\":\"listening\"") == std::string::npos) continue;
        return json::parse(line)["port"].get<int>();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 0;
  }
  bool wait_ready(int port) {
    for (int i = 0; i < 400; ++i) {
      if (fixtures::Client(port).get("/v2/health/ready").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // Sends SIGTERM and returns the exit code (-1 if it did not exit within 20 s).
  int terminate() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 400; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  std::string log() const { return fs::exists(log_) ? core::read_file(log_) : ""; }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

class ServeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::LocalStore store(dir_ / "store");
    version_ = fixtures::publish_model(store, "m", 5);
    fs::create_directories(dir_ / "images");
    auto write = [&](const std::string& name, const std::string& bytes) {
      core::write_file_atomic(dir_ / "images" / name, bytes);
      files_.push_back((dir_ / "images" / name).string());
    };
    write("test_image.png", fixtures::encode_png(28, 28, 1, fixtures::random_pixels(784, 1)));
    write("rgb.png", fixtures::encode_png(50, 40, 3, fixtures::random_pixels(6000, 2)));
    write("rgba.png", fixtures::encode_png(13, 29, 4, fixtures::random_pixels(13 * 29 * 4, 3)));
    write("photo.jpg", fixtures::encode_jpeg(64, 48, 3, fixtures::random_pixels(64 * 48 * 3, 4)));
    write("grey.jpg", fixtures::encode_jpeg(28, 28, 1, fixtures::random_pixels(784, 5)));
    const fs::path suite = testing::shared_dir() / "testdata/images/pngsuite/primary";
    if (!testing::shared_dir().empty() && fs::is_directory(suite)) {
      for (const char* name : {"basn0g01.png", "basn2c08.png", "basn3p04.png", "basn4a08.png",
                               "basn6a08.png", "basi0g16.png"}) {
        if (fs::exists(suite / name)) files_.push_back((suite / name).string());
      }
    }
  }
  std::vector<std::string> args() const {
    return {"--store", (dir_ / "store").string(), "--model", "m", "--port", "0",
            "--set",   "serve.poll_s=0"};
  }

  testing::TempDir dir_;
  std::string version_;
  std::vector<std::string> files_;
};

TEST_F(ServeCli, CurlPredictMatchesDdpipePredict) {
  ASSERT_EQ(run_command("command -v curl").exit_code, 0)
      << "curl is not installed (scripts/install-deps.sh installs it)";
  ServeProcess server(args(), dir_ / "serve.log");
  const int port = server.wait_port();
  ASSERT_GT(port, 0) << server.log();
  ASSERT_TRUE(server.wait_ready(port)) << server.log();

  // The original setup's call, unchanged.
  const auto curl = run_command(
      "cd " + (dir_ / "images").string() +
      " && curl -s -X POST -F \"file=@test_image.png\" http://127.0.0.1:" + std::to_string(port) +
      "/predict");
  ASSERT_EQ(curl.exit_code, 0) << curl.output;
  const json reply = json::parse(curl.output);
  EXPECT_EQ(reply["model"], "m");
  EXPECT_EQ(reply["version"], version_);

  std::string cmd =
      testing::ddpipe_binary() + " predict --store " + (dir_ / "store").string() + " --model m";
  for (const auto& f : files_) cmd += " " + f;
  const auto predict = run_command(cmd + " 2>/dev/null");
  ASSERT_EQ(predict.exit_code, 0) << predict.output;
  std::istringstream lines(predict.output);
  size_t compared = 0;
  for (std::string line; std::getline(lines, line);) {
    const json want = json::parse(line);
    const std::string file = want["file"];
    const auto got = run_command("curl -s -F \"file=@" + file +
                                 "\" http://127.0.0.1:" + std::to_string(port) + "/predict");
    ASSERT_EQ(got.exit_code, 0) << got.output;
    const json j = json::parse(got.output);
    EXPECT_EQ(j["prediction"], want["prediction"]) << file;
    EXPECT_EQ(j["class_index"], want["class_index"]) << file;
    EXPECT_EQ(j["confidence"], want["confidence"]) << file;
    EXPECT_EQ(j["version"], want["version"]) << file;
    if (fs::path(file).filename() == "test_image.png") EXPECT_EQ(j, reply);
    ++compared;
  }
  EXPECT_EQ(compared, files_.size());
  EXPECT_EQ(server.terminate(), 0) << server.log();
}

TEST_F(ServeCli, SigtermFinishesRequestsInFlightAndExitsZero) {
  std::vector<std::string> a = args();
  a.insert(a.end(), {"--set", "serve.max_delay_ms=10000", "--set", "serve.max_batch=64"});
  ServeProcess server(a, dir_ / "serve.log");
  const int port = server.wait_port();
  ASSERT_GT(port, 0) << server.log();
  ASSERT_TRUE(server.wait_ready(port)) << server.log();
  const std::string png = core::read_file(files_[0]);
  std::vector<fixtures::Reply> replies(4);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < replies.size(); ++i) {
    clients.emplace_back(
        [&, i] { replies[i] = fixtures::Client(port).post("/predict", png, "image/png"); });
  }
  EXPECT_TRUE(fixtures::wait_queue_depth(fixtures::Client(port), 4)) << server.log();
  const int code = server.terminate();
  for (auto& c : clients) c.join();
  EXPECT_EQ(code, 0) << server.log();
  for (const auto& r : replies) EXPECT_EQ(r.status, 200) << r.body;
  const std::string log = server.log();
  EXPECT_NE(log.find("\"signal\":\"SIGTERM\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"msg\":\"stopped\""), std::string::npos) << log;
  // Access log: one JSON line per request, with its id and status.
  size_t access = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"msg\":\"request\"") == std::string::npos) continue;
    const json j = json::parse(line);
    EXPECT_TRUE(j.contains("request_id") && j.contains("status") && j.contains("ms")) << line;
    access += j["path"] == "/predict";
  }
  EXPECT_EQ(access, 4u) << log;
}

TEST_F(ServeCli, BadSettingsExitWithUsageErrors) {
  const std::string base = testing::ddpipe_binary() + " serve --store " + (dir_ / "store").string();
  auto r = run_command(base + " --port 70000 --set serve.max_batch=0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("serve.port: must be between 0 and 65535"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("serve.max_batch"), std::string::npos) << r.output;
  r = run_command("env -u DDPIPE_NO_SUCH_VAR " + base +
                  " --port 0 --set serve.auth_token_env=DDPIPE_NO_SUCH_VAR");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("DDPIPE_NO_SUCH_VAR is not set"), std::string::npos) << r.output;
  r = run_command(base + " --model 'bad/name' --port 0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_command(testing::ddpipe_binary() + " serve --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("ddpipe serve [--host H] [--port P] [--model NAME] [--version REF]"),
            std::string::npos);
}

}  // namespace
}  // namespace ddpipe::serve
