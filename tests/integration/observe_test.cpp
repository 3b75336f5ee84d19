// Seeing a run with real processes (docs/telemetry.md): progress events in a log without a
// TTY, the step history, /metrics of live ranks over HTTP, the straggler, the run record in
// every state (running, succeeded, failed, restarting, lost) and the report of a version.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "core/fs.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"
#include "ui/api.h"

namespace ddpipe {
namespace {

using nlohmann::json;
using testing::run_command;
namespace fs = std::filesystem;

// A 2-rank job on 16x16 synthetic images: 32 steps per rank and epoch, 40 test images.
std::string job_args(const fs::path& dir, const std::string& run_id, int epochs = 2) {
  return " --store " + (dir / "store").string() + " --set cache_dir=" + (dir / "cache").string() +
         " --set name=tm --run-id " + run_id +
         " --set data.format=synthetic --set data.name=tm-synth"
         " --set data.channels=1 --set data.height=16 --set data.width=16"
         " --set data.train_size=2048 --set data.test_size=40 --set data.classes=4"
         " --set model.width=8 --set train.batch_size=32 --set train.threads=1"
         " --set loader.workers=1 --set dist.nproc=2 --epochs " +
         std::to_string(epochs);
}

// The JSON log lines of `output` whose "msg" is `msg`.
std::vector<json> log_events(const std::string& output, const std::string& msg) {
  std::vector<json> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("msg", "") == msg) out.push_back(j);
  }
  return out;
}

json run_record(const fs::path& dir, const std::string& run_id) {
  std::ifstream in(dir / "store/runs/tm" / (run_id + ".json"));
  const json record = in ? json::parse(in, nullptr, false) : json();
  return record.is_object() ? record : json::object();  // {} until it exists
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A command in the background, in its own process group, output to a file.
class Background {
 public:
  Background(const std::string& command, fs::path log) : log_(std::move(log)) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      const std::string cmd = "exec " + command + " > " + log_.string() + " 2>&1";
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      _exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0 && !waited_) {
      kill(-pid_, SIGKILL);
      wait();
    }
  }
  pid_t pid() const { return pid_; }
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    waited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string output() const { return read_text(log_); }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  bool waited_ = false;
};

// Polls `ready` every 20 ms for up to `seconds`.
bool eventually(double seconds, const std::function<bool()>& ready) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Two consecutive free TCP ports (ranks 0 and 1 serve on port and port + 1).
int free_port_pair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);
    close(s);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_port = htons(static_cast<uint16_t>(port + 1));
    const bool next_free = bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(t);
    if (next_free && port < 65535) return port;
  }
  return 0;
}

// The value of a sample line `name{...} value` (the first one) in a scrape, or -1.
double sample(const std::string& scrape, const std::string& name) {
  std::regex re("(^|\n)" + name + "(\\{[^}]*\\})? ([0-9.e+-]+)");
  std::smatch m;
  return std::regex_search(scrape, m, re) ? std::stod(m[3]) : -1.0;
}

TEST(Observe, ProgressEventsStepHistoryRecordAndReportOfAJobWithoutATty) {
  testing::TempDir dir;
  // stderr is a file: no TTY, so progress comes as JSON events.
  auto r = run_command(testing::ddpipe_binary() + " run" + job_args(dir.path(), "r1") +
                       " --set log.every_steps=5 --set log.every_s=0 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // Every 5 steps and at each epoch's end: 5, 10, …, 30, 32 in both epochs.
  const auto events = log_events(r.output, "progress");
  ASSERT_EQ(events.size(), 14u) << r.output;
  int64_t last_global = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const json& e = events[i];
    const int64_t expected_step = i % 7 == 6 ? 32 : 5 * static_cast<int64_t>(i % 7 + 1);
    EXPECT_EQ(e["step"], expected_step) << e;
    EXPECT_EQ(e["epoch"], static_cast<int64_t>(i / 7 + 1));
    EXPECT_EQ(e["steps"], 32);
    EXPECT_EQ(e["epochs"], 2);
    EXPECT_GT(e["global_step"].get<int64_t>(), last_global);
    last_global = e["global_step"];
    EXPECT_EQ(e["rank"], 0);  // rank 0 only
    for (const char* key : {"loss", "acc", "lr", "images_per_second", "data_wait_share",
                            "comm_exposed_share", "eta_epoch_s", "eta_job_s"}) {
      ASSERT_TRUE(e.contains(key) && e[key].is_number()) << key << " in " << e;
    }
    EXPECT_GT(e["images_per_second"].get<double>(), 0.0);
    EXPECT_GE(e["acc"].get<double>(), 0.0);
    EXPECT_LE(e["acc"].get<double>(), 1.0);
  }
  EXPECT_EQ(events.back()["eta_job_s"], 0.0);
  EXPECT_EQ(last_global, 64);

  // The step history beside the metrics: one row per event, also through `ddpipe metrics`.
  storage::LocalStore store(dir / "store");
  registry::Registry reg(store);
  const std::string version = reg.resolve("tm", "latest");
  const auto rows = reg.read_steps("tm", version);
  ASSERT_EQ(rows.size(), events.size());
  EXPECT_EQ(rows[3]["global_step"], events[3]["global_step"]);
  auto steps = run_command(testing::ddpipe_binary() + " metrics tm --steps --format json --store " +
                           (dir / "store").string() + " 2>/dev/null");
  ASSERT_EQ(steps.exit_code, 0) << steps.output;
  EXPECT_EQ(json::parse(steps.output).size(), 14u);
  auto csv = run_command(testing::ddpipe_binary() + " metrics tm --store " +
                         (dir / "store").string() + " 2>/dev/null");
  ASSERT_EQ(csv.exit_code, 0) << csv.output;
  EXPECT_EQ(csv.output.rfind("epoch,", 0), 0u) << csv.output;
  EXPECT_NE(csv.output.find(",test_acc,"), std::string::npos) << csv.output;
  EXPECT_NE(csv.output.find("straggler.rank"), std::string::npos) << csv.output;
  EXPECT_EQ(std::count(csv.output.begin(), csv.output.end(), '\n'), 3);  // header + 2 epochs

  // The run's record: succeeded, with the version it published.
  const json record = run_record(dir.path(), "r1");
  ASSERT_TRUE(record.contains("status")) << record;
  EXPECT_EQ(record["status"], "succeeded");
  EXPECT_EQ(record["version"], version);
  EXPECT_EQ("model_v" + record.value("stamp", std::string()), version);  // the metrics stamp
  EXPECT_EQ(record["world_size"], 2);
  EXPECT_EQ(record["hosts"].size(), 2u);
  EXPECT_EQ(record["latest_metrics"]["epoch"], 2);
  EXPECT_EQ(record["progress"]["step"], 32);
  // The dashboard finds the run's curves and step history through that stamp.
  ui::Api dashboard(store, ui::ApiOptions{});
  ui::Request req;
  req.method = "GET";
  req.path = "/api/runs/tm/r1";
  const ui::Response shown = dashboard.handle(req);
  ASSERT_EQ(shown.status, 200) << shown.body;
  const json run = json::parse(shown.body);
  EXPECT_EQ(run["epochs"].size(), 2u) << run;
  EXPECT_EQ(run["steps"].size(), 14u) << run;

  // The version's report.html: a curve point per epoch, the confusion matrix of the whole test
  // split, nothing from the network.
  const std::string html = reg.read("tm", version, "report.html");
  std::smatch m;
  int curves = 0;
  for (auto it = html.cbegin(); std::regex_search(
           it, html.cend(), m, std::regex("data-series=\"epoch-[^\"]*\" data-points=\"(\\d+)\""));
       it = m.suffix().first) {
    EXPECT_EQ(m[1], "2");
    ++curves;
  }
  EXPECT_GE(curves, 4);  // train/test loss and accuracy at least
  ASSERT_TRUE(
      std::regex_search(html, m, std::regex("data-confusion-matrix data-total=\"(\\d+)\"")));
  EXPECT_EQ(m[1], "40");
  int64_t cells = 0;
  for (auto it = html.cbegin();
       std::regex_search(it, html.cend(), m, std::regex("data-count=\"(\\d+)\""));
       it = m.suffix().first) {
    cells += std::stoll(m[1]);
  }
  EXPECT_EQ(cells, 40);
  // Nothing loaded from anywhere (the config's data.url is text in the page, not a resource).
  for (const char* external :
       {"<link", "<script", "<img", "<iframe", "src=", "href=\"http", "url(", "@import"}) {
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  }

  // `ddpipe report` of the same version writes the same kind of page.
  auto rep = run_command(testing::ddpipe_binary() + " report tm latest --out " +
                         (dir / "r.html").string() + " --store " + (dir / "store").string());
  ASSERT_EQ(rep.exit_code, 0) << rep.output;
  EXPECT_NE(read_text(dir / "r.html").find("data-confusion-matrix"), std::string::npos);
}

TEST(Observe, LiveRanksServeMetricsAndTheSlowRankIsNamedTheStraggler) {
  testing::TempDir dir;
  const int port = free_port_pair();
  ASSERT_GT(port, 0);
  // Rank 1 sleeps 80 ms in every step (the test-only slowdown): with two ranks the median is their
  // mean, so its ratio is near 1.8 at most; a factor of 1.3 leaves room for a loaded machine.
  Background job("env DDPIPE_TEST_SLOW_RANK=1:0.08 " + testing::ddpipe_binary() + " run" +
                     job_args(dir.path(), "m1", 4) + " --set metrics.port=" + std::to_string(port) +
                     " --set dist.straggler_factor=1.3",
                 dir / "job.log");
  auto scrape = [](int p) {
    return run_command("curl -sf --max-time 2 http://127.0.0.1:" + std::to_string(p) + "/metrics")
        .output;
  };
  std::string first;
  ASSERT_TRUE(eventually(120,
                         [&] {
                           first = scrape(port + 1);
                           return sample(first, "ddpipe_train_steps_total") >= 1;
                         }))
      << first << job.output();
  for (const char* family :
       {"ddpipe_train_step_seconds_bucket", "ddpipe_train_step_seconds_count",
        "ddpipe_train_images_total", "ddpipe_train_images_per_second", "ddpipe_train_loss",
        "ddpipe_train_epoch", "ddpipe_train_step", "ddpipe_train_data_wait_seconds_total",
        "ddpipe_train_comm_seconds_total", "ddpipe_train_checkpoint_upload_seconds",
        "ddpipe_train_restarts", "ddpipe_process_resident_memory_bytes"}) {
    EXPECT_NE(first.find(family), std::string::npos) << family << "\n" << first;
  }
  EXPECT_NE(first.find("rank=\"1\""), std::string::npos) << first;
  EXPECT_GT(sample(first, "ddpipe_process_resident_memory_bytes"), 1e6);
  // The counters advance while it trains.
  std::string later;
  EXPECT_TRUE(eventually(60, [&] {
    later = scrape(port + 1);
    return sample(later, "ddpipe_train_steps_total") >
           sample(first, "ddpipe_train_steps_total") + 3;
  })) << later;
  EXPECT_GE(sample(later, "ddpipe_train_images_total"), sample(first, "ddpipe_train_images_total"));
  EXPECT_NE(scrape(port).find("rank=\"0\""), std::string::npos);
  // While it runs, its record says so.
  auto shown = run_command(testing::ddpipe_binary() + " runs show tm m1 --store " +
                           (dir / "store").string() + " 2>/dev/null");
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_EQ(json::parse(shown.output)["status"], "running") << shown.output;

  ASSERT_EQ(job.wait(), 0) << job.output();
  const std::string out = job.output();
  const auto epochs = log_events(out, "epoch 1 done");
  ASSERT_EQ(epochs.size(), 1u) << out;
  EXPECT_EQ(epochs[0]["straggler"]["rank"], 1) << epochs[0];
  EXPECT_TRUE(epochs[0]["straggler"]["is_straggler"].get<bool>()) << epochs[0];
  EXPECT_GT(epochs[0]["straggler"]["ratio"].get<double>(), 1.0);
  bool warned = false;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"level\":\"warn\"") != std::string::npos &&
        line.find("straggler: rank 1") != std::string::npos)
      warned = true;
  }
  EXPECT_TRUE(warned) << out;
}

// Ingested data that no longer matches its digest: the ranks exit 3 (kData).
TEST(Observe, FailedRunRecordsTheRanksError) {
  testing::TempDir dir;
  auto ingest = run_command(testing::ddpipe_binary() + " ingest" + job_args(dir.path(), "f1"));
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  int corrupted = 0;
  for (auto& e : fs::recursive_directory_iterator(dir / "store/datasets")) {
    if (e.is_regular_file() && e.path().filename().string().find("train") != std::string::npos) {
      std::string bytes = read_text(e.path());
      bytes[bytes.size() / 2] ^= 0x5a;
      core::write_file_atomic(e.path(), bytes);
      ++corrupted;
    }
  }
  ASSERT_GT(corrupted, 0);
  auto r = run_command(testing::ddpipe_binary() + " launch" + job_args(dir.path(), "f1"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  const json record = run_record(dir.path(), "f1");
  ASSERT_TRUE(record.contains("status")) << r.output;
  EXPECT_EQ(record["status"], "failed");
  EXPECT_EQ(record["error"]["exit_code"], 3);
  EXPECT_FALSE(record["error"]["message"].get<std::string>().empty());
  EXPECT_NE(record["finished"], "");
  auto list = run_command(testing::ddpipe_binary() + " runs list tm --store " +
                          (dir / "store").string() + " 2>/dev/null");
  EXPECT_NE(list.output.find("failed"), std::string::npos) << list.output;
}

TEST(Observe, KilledRankMakesTheRunRestartingThenItSucceeds) {
  testing::TempDir dir;
  Background job(testing::ddpipe_binary() + " run --max-restarts 1" +
                     job_args(dir.path(), "k1", 3) + " --set runs.heartbeat_s=0.1",
                 dir / "job.log");
  // Kill rank 1 once the job is training.
  ASSERT_TRUE(eventually(120, [&] {
    const json r = run_record(dir.path(), "k1");
    return r.contains("progress") && r["progress"].value("step", 0) > 0;
  })) << job.output();
  std::vector<pid_t> ranks;
  ASSERT_TRUE(eventually(30, [&] {
    ranks = testing::children_of(job.pid());
    return ranks.size() == 2;
  }));
  ASSERT_EQ(kill(ranks[1], SIGKILL), 0);
  EXPECT_TRUE(eventually(60, [&] {
    return run_record(dir.path(), "k1").value("status", "") == "restarting";
  })) << job.output();
  ASSERT_EQ(job.wait(), 0) << job.output();
  const json record = run_record(dir.path(), "k1");
  EXPECT_EQ(record["status"], "succeeded") << record;
  EXPECT_EQ(record["attempt"], 1);
  ASSERT_EQ(record["attempts"].size(), 1u) << record;
  EXPECT_EQ(record["attempts"][0]["failed_rank"], 1);
  EXPECT_FALSE(record.contains("error") && record["error"].is_object()) << record;
}

TEST(Observe, RunWhoseHeartbeatStoppedIsShownLost) {
  testing::TempDir dir;
  Background job(testing::ddpipe_binary() + " run" + job_args(dir.path(), "l1", 50) +
                     " --set runs.heartbeat_s=0.2",
                 dir / "job.log");
  ASSERT_TRUE(eventually(120, [&] {
    return run_record(dir.path(), "l1").value("status", "") == "running";
  })) << job.output();
  // The node goes away: ranks and launcher die at once (SIGKILL: nothing runs after it), and
  // nobody writes the record again.
  std::vector<pid_t> ranks;
  ASSERT_TRUE(eventually(30, [&] {
    ranks = testing::children_of(job.pid());
    return ranks.size() == 2;
  }));
  for (pid_t rank : ranks) kill(rank, SIGKILL);
  kill(-job.pid(), SIGKILL);
  job.wait();
  const auto killed = std::chrono::steady_clock::now();
  const std::string show = testing::ddpipe_binary() + " runs show tm l1 --store " +
                           (dir / "store").string() + " --set runs.lost_after_s=1 2>/dev/null";
  json j;
  // Running while the heartbeat is younger than 1 s, lost from then on.
  ASSERT_TRUE(eventually(30, [&] {
    j = json::parse(run_command(show).output, nullptr, false);
    return j.is_object() && j["status"] == "lost";
  })) << j;
  EXPECT_GE(std::chrono::steady_clock::now() - killed, std::chrono::milliseconds(500));
  EXPECT_EQ(j["stored_status"], "running");
  EXPECT_GE(j["heartbeat_age_s"].get<double>(), 1.0);
  auto list = run_command(testing::ddpipe_binary() + " runs list --store " +
                          (dir / "store").string() + " --set runs.lost_after_s=1 2>/dev/null");
  EXPECT_NE(list.output.find("lost"), std::string::npos) << list.output;
}

}  // namespace
}  // namespace ddpipe
