// `ddpipe ui`, the real binary, on a free port against a local store with a model whose weights
// cannot load: the dashboard's page, the runs API and a file over HTTP (curl), the root
// redirect, and readiness staying 503.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include "core/fs.h"
#include "registry/registry.h"
#include "report/sample_report.h"
#include "runs/runs.h"
#include "storage/store.h"
#include "test_util.h"

namespace ddpipe::ui {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::run_command;

// `ddpipe ui …` as a child process, stdout and stderr in files.
class UiProcess {
 public:
  UiProcess(const std::vector<std::string>& args, const fs::path& dir)
      : out_(dir / "ui.out"), err_(dir / "ui.err") {
    std::vector<std::string> argv = {testing::ddpipe_binary(), "ui"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      dup2(::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), STDOUT_FILENO);
      dup2(::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), STDERR_FILENO);
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      execv(c[0], c.data());
      _exit(127);
    }
  }
  ~UiProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      for (int i = 0; i < 200 && waitpid(pid_, nullptr, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // The URL of the "dashboard: …" line on stdout, or "" after 30 s.
  std::string wait_url() {
    const std::regex line("dashboard: (http://[^\\s]+/ui/)");
    for (int i = 0; i < 600; ++i) {
      std::smatch m;
      const std::string out = fs::exists(out_) ? core::read_file(out_) : "";
      if (std::regex_search(out, m, line)) return m[1];
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "";
  }
  std::string log() const { return fs::exists(err_) ? core::read_file(err_) : ""; }

 private:
  fs::path out_, err_;
  pid_t pid_ = -1;
};

TEST(UiServer, ServesThePagesTheApiAndFilesOverHttp) {
  testing::TempDir dir;
  const fs::path store_dir = dir.path() / "store";
  fs::create_directories(store_dir);
  auto store = storage::open_store(store_dir.string());
  registry::Registry reg(*store);
  const std::string version =
      reg.publish("fm", {{"model.pt", "not-a-model"}}, report::sample::manifest(2, 0.3, 1.0, 1));
  runs::update_run(*store, "fm", "run-1", [](runs::RunRecord& r) { r.status = runs::kSucceeded; });

  UiProcess ui({"--store", store_dir.string(), "--port", "0", "--model", "fm"}, dir.path());
  const std::string url = ui.wait_url();
  ASSERT_FALSE(url.empty()) << ui.log();
  const std::string base = url.substr(0, url.size() - 4);  // without "/ui/"

  auto r = run_command("curl -sf " + url);
  ASSERT_EQ(r.exit_code, 0) << r.output << ui.log();
  EXPECT_NE(r.output.find("<html"), std::string::npos) << r.output;

  r = run_command("curl -sf " + base + "/ui/api/runs");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json runs = json::parse(r.output);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["run_id"], "run-1");

  r = run_command("curl -sf " + base + "/ui/files/fm/" + version + "/model.pt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "not-a-model");

  r = run_command("curl -s -o /dev/null -w '%{http_code} %{redirect_url}' " + base + "/");
  EXPECT_EQ(r.output, "302 " + base + "/ui/");
  // The model cannot load: the server runs anyway, not ready.
  r = run_command("curl -s -o /dev/null -w '%{http_code}' " + base + "/v2/health/ready");
  EXPECT_EQ(r.output, "503");
}

TEST(UiServer, WithATokenTheApiNeedsIt) {
  testing::TempDir dir;
  const fs::path store_dir = dir.path() / "store";
  fs::create_directories(store_dir);
  setenv("DDPIPE_UI_TEST_TOKEN", "s3cret", 1);
  UiProcess ui({"--store", store_dir.string(), "--port", "0", "--set",
                "serve.auth_token_env=DDPIPE_UI_TEST_TOKEN"},
               dir.path());
  const std::string url = ui.wait_url();
  ASSERT_FALSE(url.empty()) << ui.log();
  auto r = run_command("curl -s -o /dev/null -w '%{http_code}' " + url);
  EXPECT_EQ(r.output, "200");  // the page is open, so that it can ask for the token
  r = run_command("curl -s -o /dev/null -w '%{http_code}' " + url + "api/models");
  EXPECT_EQ(r.output, "401");
  r = run_command("curl -sf -H 'Authorization: Bearer s3cret' " + url + "api/models");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "[]");
}

}  // namespace
}  // namespace ddpipe::ui
