// Downloads from a real local HTTP server (python3 -m http.server, or a small Range-capable
// variant of it), as ddpipe does for CIFAR-10.
#include "data/download.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/fs.h"
#include "core/hash.h"
#include "data/formats.h"
#include "fixtures.h"
#include "test_util.h"

extern char** environ;

namespace ddpipe::data {
namespace {

namespace dt = ddpipe::testing;
namespace fs = std::filesystem;
using core::ErrorKind;

constexpr const char* kRangeServer = R"(
import functools, http.server, io, sys
port, root, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]

class Handler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/cifar-10-binary.tar.gz")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        rng = self.headers.get("Range")
        with open(log, "a") as f:
            f.write("%s %s\n" % (self.path, rng))
        if not rng:
            return super().send_head()
        data = open(self.translate_path(self.path), "rb").read()
        start = int(rng.split("=")[1].split("-")[0])
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % len(data))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        return io.BytesIO(data[start:])

http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                functools.partial(Handler, directory=root)).serve_forever()
)";

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

bool accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// A python3 HTTP server child process serving `root` on a free loopback port.
class HttpServer {
 public:
  // range = false: `python3 -m http.server` (no Range support); true: kRangeServer.
  HttpServer(const fs::path& root, const fs::path& work, bool range) {
    if (range) dt::write_bytes(work / "range_server.py", kRangeServer);
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) {
      port_ = free_port();
      const std::string port = std::to_string(port_);
      std::vector<std::string> args = {"/usr/bin/python3"};
      if (range) {
        args.insert(args.end(), {(work / "range_server.py").string(), port, root.string(),
                                 (work / "requests.log").string()});
      } else {
        args.insert(args.end(), {"-m", "http.server", "--bind", "127.0.0.1", port, "--directory",
                                 root.string()});
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      const std::string log = (work / "server.log").string();
      posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                       0644);
      posix_spawn_file_actions_adddup2(&actions, 1, 2);
      pid_t pid = -1;
      const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&actions);
      if (rc != 0) continue;
      // Wait until it listens; a lost race for the port makes it exit: try another.
      for (int i = 0; i < 200; ++i) {
        if (accepts(port_)) {
          pid_ = pid;
          break;
        }
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (pid_ < 0) stop(pid);
    }
  }
  ~HttpServer() { stop(pid_); }
  bool running() const { return pid_ > 0; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
  }

 private:
  static void stop(pid_t pid) {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
  }
  pid_t pid_ = -1;
  int port_ = 0;
};

class DownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dataset_ = dt::pattern_dataset(10, 4, 3, 32, 32, 10, 77);
    dataset_.classes = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    archive_ = tmp_ / "www" / "cifar-10-binary.tar.gz";
    dt::write_tar_gz(archive_, dt::cifar_archive_entries(dataset_));
    md5_ = core::file_digest_hex(archive_, core::Hasher::Algo::kMd5);
    bytes_ = core::read_file(archive_);
  }
  std::unique_ptr<HttpServer> serve(bool range) {
    auto s = std::make_unique<HttpServer>(tmp_ / "www", tmp_.path(), range);
    if (!s->running()) ADD_FAILURE() << "could not start the python3 HTTP server";
    return s;
  }
  std::string requests() {
    std::error_code ec;
    return fs::exists(tmp_ / "requests.log") ? core::read_file(tmp_ / "requests.log") : "";
  }

  dt::TempDir tmp_;
  Dataset dataset_;
  fs::path archive_;
  std::string md5_;
  std::string bytes_;
};

TEST_F(DownloadTest, GoodMd5IsExtractedAndLoadable) {
  auto server = serve(false);
  if (!server->running()) return;
  const fs::path dir = tmp_ / "data" / "cifar10";
  const fs::path batches = ensure_cifar10(dir, server->url("cifar-10-binary.tar.gz"), md5_);
  EXPECT_EQ(batches, dir / "cifar-10-batches-bin");
  EXPECT_TRUE(fs::is_regular_file(dir / "cifar-10-binary.tar.gz"));
  EXPECT_FALSE(fs::exists(dir / "cifar-10-binary.tar.gz.part"));
  for (const auto& e : fs::directory_iterator(dir)) {  // no staging folders left
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();
  }
  const Dataset d = load_cifar10(dir, "cifar10");
  EXPECT_EQ(d.digest, load_cifar10(archive_, "cifar10").digest);
  EXPECT_EQ(d.classes, dataset_.classes);
  EXPECT_EQ(d.train.size(), 10);

  // Present now: nothing is fetched (the URL is unreachable).
  EXPECT_EQ(ensure_cifar10(dir, "http://127.0.0.1:1/none", md5_), batches);

  // Through load_source with data.download.
  core::DataConfig cfg;
  cfg.format = "cifar10";
  cfg.name = "cifar10";
  cfg.path = (tmp_ / "fresh").string();
  cfg.download = true;
  cfg.url = server->url("cifar-10-binary.tar.gz");
  cfg.md5 = md5_;
  EXPECT_EQ(load_source(cfg, 0).digest, d.digest);
}

TEST_F(DownloadTest, BadMd5LeavesNothingBehind) {
  auto server = serve(false);
  if (!server->running()) return;
  const fs::path dir = tmp_ / "bad";
  const std::string url = server->url("cifar-10-binary.tar.gz");
  const std::string wrong(32, '0');
  EXPECT_TRUE(dt::throws_error([&] { ensure_cifar10(dir, url, wrong); }, ErrorKind::kData,
                               {url, "MD5 mismatch", wrong, md5_}));
  EXPECT_FALSE(fs::exists(dir));

  EXPECT_TRUE(dt::throws_error([&] { download_file(url, wrong, tmp_ / "dl" / "file.tgz"); },
                               ErrorKind::kData, {"MD5 mismatch"}));
  EXPECT_FALSE(fs::exists(tmp_ / "dl" / "file.tgz"));
  EXPECT_FALSE(fs::exists(tmp_ / "dl" / "file.tgz.part"));
}

TEST_F(DownloadTest, ResumesAPartialDownload) {
  auto server = serve(true);
  if (!server->running()) return;
  const fs::path dest = tmp_ / "dl" / "cifar-10-binary.tar.gz";
  const size_t half = bytes_.size() / 2;
  dt::write_bytes(dest.string() + ".part", bytes_.substr(0, half));
  download_file(server->url("cifar-10-binary.tar.gz"), md5_, dest);
  EXPECT_EQ(core::read_file(dest), bytes_);
  EXPECT_FALSE(fs::exists(dest.string() + ".part"));
  EXPECT_NE(requests().find("bytes=" + std::to_string(half) + "-"), std::string::npos)
      << requests();

  // A part that is already complete: the server answers 416, the MD5 decides.
  fs::remove(dest);
  dt::write_bytes(dest.string() + ".part", bytes_);
  download_file(server->url("cifar-10-binary.tar.gz"), md5_, dest);
  EXPECT_EQ(core::read_file(dest), bytes_);

  // A stale, wrong part that is longer than the file: fetched again from the start.
  fs::remove(dest);
  dt::write_bytes(dest.string() + ".part", std::string(bytes_.size() + 10, 'x'));
  download_file(server->url("cifar-10-binary.tar.gz"), md5_, dest);
  EXPECT_EQ(core::read_file(dest), bytes_);

  // Redirects are followed.
  fs::remove(dest);
  download_file(server->url("redirect"), md5_, dest);
  EXPECT_EQ(core::read_file(dest), bytes_);
}

TEST_F(DownloadTest, ServerWithoutRangeSupportRestarts) {
  auto server = serve(false);
  if (!server->running()) return;
  const fs::path dest = tmp_ / "dl" / "archive.tar.gz";
  dt::write_bytes(dest.string() + ".part", "garbage that is not the head of the file");
  download_file(server->url("cifar-10-binary.tar.gz"), md5_, dest);
  EXPECT_EQ(core::read_file(dest), bytes_);
}

TEST_F(DownloadTest, HttpAndNetworkErrorsAreStorageErrors) {
  auto server = serve(false);
  if (!server->running()) return;
  const fs::path dest = tmp_ / "dl" / "missing.tar.gz";
  EXPECT_TRUE(dt::throws_error([&] { download_file(server->url("missing.tar.gz"), md5_, dest); },
                               ErrorKind::kStorage, {"missing.tar.gz", "404"}));
  EXPECT_FALSE(fs::exists(dest.string() + ".part"));
  const int closed = free_port();
  EXPECT_TRUE(dt::throws_error(
      [&] { download_file("http://127.0.0.1:" + std::to_string(closed) + "/x", md5_, dest); },
      ErrorKind::kStorage, {"127.0.0.1"}));
  EXPECT_TRUE(
      dt::throws_error([&] { ensure_cifar10(tmp_ / "nodir", server->url("nope.tgz"), md5_); },
                       ErrorKind::kStorage, {"404"}));
  EXPECT_FALSE(fs::exists(tmp_ / "nodir"));
}

}  // namespace
}  // namespace ddpipe::data
