// S3Store and S3Client against a real S3 server (Ceph RGW from scripts/s3-test-server.sh; the
// tests skip without one), boto3 interoperability, and the signer of real requests checked
// against botocore's.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "s3_test_env.h"
#include "storage/s3_store.h"

namespace ddpipe::storage {
namespace {

using testing::random_bytes;

core::Error error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const core::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error thrown";
  return core::Error(core::ErrorKind::kInternal, "");
}

S3Store make_store(const std::string& tag, const std::string& prefix = "p/q") {
  return S3Store("s3://" + testing::unique_bucket(tag) + (prefix.empty() ? "" : "/" + prefix),
                 *testing::s3_test_settings());
}

void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

TEST(S3Store, SmallObjectsRoundTrip) {
  REQUIRE_S3_SERVER();
  S3Store store = make_store("small");
  store.put("models/a/x.json", "{}");  // creates the bucket
  store.put("models/b/y.bin", std::string(1000, 'y'));
  store.put("metrics/a/empty", "");
  EXPECT_TRUE(store.exists("models/a/x.json"));
  EXPECT_EQ(store.get("models/b/y.bin"), std::string(1000, 'y'));
  EXPECT_EQ(store.get("metrics/a/empty"), "");
  auto all = store.list("models/");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].key, "models/a/x.json");
  EXPECT_EQ(all[1].size, 1000u);
  EXPECT_EQ(store.list("models/a").size(), 1u);
  EXPECT_EQ(store.list("").size(), 3u);
  // The prefix is part of the S3 key, not of the store key.
  EXPECT_TRUE(store.client().head_object(store.bucket(), "p/q/models/a/x.json").has_value());

  testing::TempDir dir;
  store.get_file("models/b/y.bin", dir / "deep/er/y.bin");
  EXPECT_EQ(core::read_file(dir / "deep/er/y.bin"), std::string(1000, 'y'));
  store.put("models/a/x.json", "{\"v\":2}");  // replaced at once
  EXPECT_EQ(store.get("models/a/x.json"), "{\"v\":2}");
  store.remove("models/a/x.json");
  EXPECT_FALSE(store.exists("models/a/x.json"));
  EXPECT_FALSE(store.try_get("models/a/x.json").has_value());
  EXPECT_EQ(store.url(), "s3://" + store.bucket() + "/p/q");
}

// Ingest workers writing the first objects of a new bucket at once: each sees NoSuchBucket and
// creates it, and RGW answers the losers of that race 409 BucketAlreadyExists although the
// bucket is theirs. Every write succeeds.
TEST(S3Store, FirstWritesFromManyThreadsCreateTheBucketTogether) {
  REQUIRE_S3_SERVER();
  for (int round = 0; round < 3; ++round) {
    const std::string bucket = testing::unique_bucket("race");
    testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
    std::vector<std::thread> threads;
    std::vector<std::string> errors(8);
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        try {
          S3Store store("s3://" + bucket, *testing::s3_test_settings());
          store.put("k/" + std::to_string(t), std::to_string(t));
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
    for (const auto& e : errors) EXPECT_EQ(e, "");
    S3Store store("s3://" + bucket, *testing::s3_test_settings());
    EXPECT_EQ(store.list("k/").size(), 8u);
  }
}

// A reader racing a writer that keeps replacing the object (an alias pointer under concurrent
// promotions): every read is one whole version, never a mix and never the server's 412 for an
// object replaced between the HEAD and the GET.
TEST(S3Store, ReadsOfAnObjectBeingReplacedGiveOneWholeVersion) {
  REQUIRE_S3_SERVER();
  S3Store store = make_store("replace");
  const std::string a(3000, 'a'), b(5000, 'b');
  store.put("k", a);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) store.put("k", i % 2 ? a : b);
  });
  testing::TempDir dir;
  std::string failure;
  for (int reads = 0; reads < 60 && failure.empty(); ++reads) {
    try {
      const std::string got =
          reads % 2 ? store.get("k") : (store.get_file("k", dir / "k"), core::read_file(dir / "k"));
      if (got != a && got != b) failure = "read " + std::to_string(reads) + ": a mix";
    } catch (const core::Error& e) {
      failure = "read " + std::to_string(reads) + ": " + e.what();
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(failure, "");
  // get_file leaves no temporary copies behind, also when it had to start again.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(S3Store, MissingObjectsAndBuckets) {
  REQUIRE_S3_SERVER();
  S3Store store = make_store("missing");
  // A bucket that was never written is an empty store, as a local folder that does not exist.
  EXPECT_TRUE(store.list("").empty());
  EXPECT_FALSE(store.exists("a/b"));
  store.remove("a/b");
  core::Error e = error_of([&] { store.get("nope/x"); });
  EXPECT_EQ(e.kind(), core::ErrorKind::kNotFound);
  EXPECT_NE(std::string(e.what()).find("nope/x"), std::string::npos) << e.what();
  store.put("a/b", "x");
  testing::TempDir dir;
  EXPECT_EQ(error_of([&] { store.get_file("a/c", dir / "c"); }).kind(), core::ErrorKind::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir / "c"));
  EXPECT_EQ(error_of([&] { store.copy("a/c", "a/d"); }).kind(), core::ErrorKind::kNotFound);
  EXPECT_EQ(error_of([&] { store.put("a/../b", "x"); }).kind(), core::ErrorKind::kUsage);
}

TEST(S3Store, MultipartRoundTripFromMemoryAndFile) {
  REQUIRE_S3_SERVER();
  S3Store store = make_store("multi");
  testing::EmptyBucketAtEnd cleanup(store.client().settings(), store.bucket());
  const std::string data = random_bytes((13u << 20) + 12345, 1);  // 3 parts of 5 MiB
  store.put("big/mem.bin", data);
  testing::TempDir dir;
  write_file(dir / "src.bin", data);
  store.put_file("big/file.bin", dir / "src.bin");
  for (const char* key : {"big/mem.bin", "big/file.bin"}) {
    SCOPED_TRACE(key);
    auto head = store.client().head_object(store.bucket(), store.object_key(key));
    ASSERT_TRUE(head);
    EXPECT_EQ(head->size, data.size());
    EXPECT_EQ(head->etag.substr(head->etag.size() - 2), "-3") << head->etag;
    EXPECT_TRUE(store.get(key) == data);
    store.get_file(key, dir / "back.bin");
    EXPECT_TRUE(core::read_file(dir / "back.bin") == data);
  }
  auto listed = store.list("big/");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].size, data.size());
  EXPECT_TRUE(store.client().list_multipart_uploads(store.bucket(), "").empty());
  // No temporary files beside the destination.
  for (auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << e.path();
  }
}

TEST(S3Store, ListPaginates) {
  REQUIRE_S3_SERVER();
  auto settings = *testing::s3_test_settings();
  settings.list_page_size = 4;
  S3Store store("s3://" + testing::unique_bucket("page") + "/x", settings);
  std::vector<std::string> keys;
  for (int i = 0; i < 11; ++i) keys.push_back("k/" + std::to_string(100 + i * 7 % 11));
  for (auto& k : keys) store.put(k, k);
  store.put("other/z", "z");
  std::sort(keys.begin(), keys.end());
  auto listed = store.list("k/");
  ASSERT_EQ(listed.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(listed[i].key, keys[i]);
  auto page = store.client().list_objects_page(store.bucket(), "x/k/", "", 4);
  EXPECT_EQ(page.objects.size(), 4u);
  EXPECT_FALSE(page.next_token.empty());
}

TEST(S3Client, RangedGet) {
  REQUIRE_S3_SERVER();
  S3Store store = make_store("range", "");
  const std::string data = random_bytes(100000, 2);
  store.put("r", data);
  S3Client& c = store.client();
  EXPECT_EQ(c.get_range(store.bucket(), "r", 0, 10), data.substr(0, 10));
  EXPECT_EQ(c.get_range(store.bucket(), "r", 99990, 10), data.substr(99990));
  EXPECT_EQ(c.get_range(store.bucket(), "r", 500, 0), data.substr(500));
  EXPECT_EQ(c.get_range(store.bucket(), "r", 99000, 5000), data.substr(99000));  // clipped
  core::Error e = error_of([&] { c.get_range(store.bucket(), "r", 200000, 10); });
  EXPECT_EQ(e.kind(), core::ErrorKind::kStorage);
  EXPECT_NE(std::string(e.what()).find("HTTP 416"), std::string::npos) << e.what();
}

TEST(S3Store, CopySingleAndMultipart) {
  REQUIRE_S3_SERVER();
  auto settings = *testing::s3_test_settings();
  settings.max_single_copy = 6u << 20;
  S3Store store("s3://" + testing::unique_bucket("copy"), settings);
  testing::EmptyBucketAtEnd cleanup(settings, store.bucket());
  store.put("small", "hello");
  store.copy("small", "dir/small-copy");
  EXPECT_EQ(store.get("dir/small-copy"), "hello");
  const std::string big = random_bytes((12u << 20) + 7, 3);
  store.put("big", big);
  store.copy("big", "dir/big-copy");  // above max_single_copy: UploadPartCopy
  auto head = store.client().head_object(store.bucket(), "dir/big-copy");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->etag.substr(head->etag.size() - 2), "-3") << head->etag;
  EXPECT_TRUE(store.get("dir/big-copy") == big);
  EXPECT_TRUE(store.client().list_multipart_uploads(store.bucket(), "").empty());
}

TEST(S3Client, PresignedGetNeedsNoCredentials) {
  REQUIRE_S3_SERVER();
  S3Store store = make_store("presign", "");
  store.put("dir/a file+x.txt", "presigned content");
  std::string url = store.client().presign_url("GET", store.bucket(), "dir/a file+x.txt", 60);
  EXPECT_EQ(url.find(testing::s3_test_settings()->credentials.secret_access_key),
            std::string::npos);
  auto r = testing::run_command("curl -sS --fail '" + url + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "presigned content");
  std::string tampered = url;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_NE(testing::run_command("curl -sS --fail '" + tampered + "'").exit_code, 0);
}

TEST(S3Store, WrongSecretNamesTheAccessKeyNeverTheSecret) {
  REQUIRE_S3_SERVER();
  auto settings = *testing::s3_test_settings();
  const std::string secret = "wrong-secret-Zq9xV7";
  settings.credentials.secret_access_key = secret;
  S3Store store("s3://" + testing::unique_bucket("auth"), settings);
  for (auto op : std::vector<std::function<void()>>{
           [&] { store.put("a", "x"); }, [&] { store.exists("a"); }, [&] { store.list(""); }}) {
    core::Error e = error_of(op);
    std::string m = e.what();
    EXPECT_EQ(e.kind(), core::ErrorKind::kStorage) << m;
    EXPECT_NE(m.find("authentication failed for access key id '" +
                     settings.credentials.access_key_id + "'"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("HTTP 403"), std::string::npos) << m;
    EXPECT_EQ(m.find(secret), std::string::npos) << m;
  }
  std::string m = error_of([&] { store.put("a", "x"); }).what();
  EXPECT_NE(m.find("SignatureDoesNotMatch"), std::string::npos) << m;
  EXPECT_NE(m.find("s3://" + store.bucket() + "/a"), std::string::npos) << m;
}

TEST(S3Store, VirtualHostedStyle) {
  REQUIRE_S3_SERVER();
  auto settings = *testing::s3_test_settings();
  // radosgw knows "localhost" as its DNS name; curl resolves *.localhost to the loopback.
  std::string hostport = settings.endpoint.substr(settings.endpoint.rfind(':'));
  settings.endpoint = "http://localhost" + hostport;
  settings.path_style = false;
  S3Store store("s3://" + testing::unique_bucket("vhost") + "/v", settings);
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), store.bucket());
  const std::string data = random_bytes((6u << 20) + 1, 4);
  store.put("k/obj", data);
  EXPECT_TRUE(store.get("k/obj") == data);
  ASSERT_EQ(store.list("k/").size(), 1u);
  // The same object through path-style addressing.
  S3Store path_style("s3://" + store.bucket() + "/v", *testing::s3_test_settings());
  EXPECT_TRUE(path_style.get("k/obj") == data);
}

// RGW refuses parts under 5 MiB at CompleteMultipartUpload (EntityTooSmall): a permanent error
// after the parts are stored. The upload must be aborted and no object appear.
TEST(S3Store, FailedCompleteAbortsTheUpload) {
  REQUIRE_S3_SERVER();
  auto settings = *testing::s3_test_settings();
  settings.part_size = 64 << 10;
  S3Store store("s3://" + testing::unique_bucket("abort"), settings);
  store.put("keep", "k");
  core::Error e = error_of([&] { store.put("obj", random_bytes(200 << 10, 5)); });
  std::string m = e.what();
  EXPECT_EQ(e.kind(), core::ErrorKind::kStorage) << m;
  EXPECT_NE(m.find("CompleteMultipartUpload s3://" + store.bucket() + "/obj"), std::string::npos)
      << m;
  EXPECT_NE(m.find("HTTP 400 EntityTooSmall"), std::string::npos) << m;
  EXPECT_EQ(m.find("attempts"), std::string::npos) << "a 4xx must not be retried: " << m;
  EXPECT_FALSE(store.exists("obj"));
  EXPECT_TRUE(store.client().list_multipart_uploads(store.bucket(), "").empty())
      << "the failed upload left parts behind";
}

// Forwards connections to 127.0.0.1:upstream and flips one bit at byte `at` of each
// server-to-client stream: a network that corrupts what it carries.
class CorruptingProxy {
 public:
  CorruptingProxy(int upstream, size_t at) : upstream_(upstream), at_(at) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_ = std::thread([this] {
      for (int c; (c = ::accept(fd_, nullptr, nullptr)) >= 0;) {
        connections_.emplace_back([this, c] { pump(c); });
      }
    });
  }
  ~CorruptingProxy() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    accept_.join();
    for (auto& t : connections_) t.join();
  }
  int port() const { return port_; }

 private:
  static sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    return a;
  }
  void pump(int client) {
    int up = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(upstream_);
    if (::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      pollfd fds[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
      char buf[65536];
      for (size_t down = 0; ::poll(fds, 2, 10000) > 0;) {
        int from = fds[0].revents ? client : up, to = from == client ? up : client;
        ssize_t n = ::read(from, buf, sizeof buf);
        if (n <= 0) break;
        if (from == up) {
          if (down <= at_ && at_ < down + static_cast<size_t>(n)) buf[at_ - down] ^= 0x10;
          down += static_cast<size_t>(n);
        }
        for (ssize_t off = 0, w; off < n; off += w) {
          if ((w = ::write(to, buf + off, static_cast<size_t>(n - off))) <= 0) break;
        }
      }
    }
    ::close(up);
    ::close(client);
  }
  int upstream_;
  size_t at_;
  int fd_ = -1;
  int port_ = 0;
  std::thread accept_;
  std::vector<std::thread> connections_;
};

TEST(S3Store, CorruptedDownloadIsRejected) {
  REQUIRE_S3_SERVER();
  S3Store direct = make_store("corrupt", "");
  testing::EmptyBucketAtEnd cleanup(direct.client().settings(), direct.bucket());
  const std::string data = random_bytes(1 << 20, 6);
  direct.put("obj", data);
  auto settings = *testing::s3_test_settings();
  CorruptingProxy proxy(std::stoi(settings.endpoint.substr(settings.endpoint.rfind(':') + 1)),
                        200000);  // in the body of the GET that follows the HEAD
  settings.endpoint = "http://127.0.0.1:" + std::to_string(proxy.port());
  testing::TempDir dir;
  for (bool to_file : {true, false}) {
    S3Store store("s3://" + direct.bucket(), settings);  // a fresh connection each time
    core::Error e = error_of([&] {
      if (to_file)
        store.get_file("obj", dir / "obj");
      else
        store.get("obj");
    });
    EXPECT_EQ(e.kind(), core::ErrorKind::kStorage) << e.what();
    EXPECT_NE(std::string(e.what()).find("content does not match its ETag"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "a corrupt or temporary file was left";
  EXPECT_TRUE(direct.get("obj") == data);  // the stored object is fine
}

TEST(S3Boto3, ObjectsRoundTripBothWays) {
  REQUIRE_S3_SERVER();
  REQUIRE_BOTO3();
  S3Store store = make_store("boto", "");
  testing::EmptyBucketAtEnd cleanup(store.client().settings(), store.bucket());
  testing::TempDir dir;
  const std::string small = random_bytes(1000, 7), big = random_bytes((11u << 20) + 3, 8);
  store.put("ddpipe/small", small);
  store.put("ddpipe/big", big);
  const std::string py = testing::boto3_helper() + " ";
  for (auto [key, bytes] : {std::pair{"ddpipe/small", &small}, std::pair{"ddpipe/big", &big}}) {
    auto r = testing::run_command(py + "get " + store.bucket() + " " + key + " " +
                                  (dir / "b3").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(core::read_file(dir / "b3") == *bytes) << key << " read by boto3 differs";
  }
  write_file(dir / "small", small);
  write_file(dir / "big", big);
  for (const char* name : {"small", "big"}) {
    auto r = testing::run_command(py + "put " + store.bucket() + " boto/" + name + " " +
                                  (dir / name).string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  EXPECT_TRUE(store.get("boto/small") == small);
  store.get_file("boto/big", dir / "big.back");  // boto3's multipart: 3 parts of 5 MiB
  EXPECT_TRUE(core::read_file(dir / "big.back") == big);
  auto head = store.client().head_object(store.bucket(), "boto/big");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->etag.substr(head->etag.size() - 2), "-3");
}

// ---- the signer of real requests against botocore's --------------------------------------------

// Accepts HTTP requests on 127.0.0.1 and records them. The first requests get the scripted S3
// errors (HTTP status, code), the others 200 with a body that satisfies every S3Client call (an
// UploadId, an untruncated listing).
class CaptureServer {
 public:
  explicit CaptureServer(std::vector<std::pair<int, std::string>> errors = {})
      : errors_(std::move(errors)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~CaptureServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[65536];
      size_t body_at = std::string::npos, need = 0;
      for (ssize_t n; (n = ::read(c, buf, sizeof buf)) > 0;) {
        req.append(buf, static_cast<size_t>(n));
        if (body_at == std::string::npos && (body_at = req.find("\r\n\r\n")) != std::string::npos) {
          body_at += 4;
          std::string lower = req.substr(0, body_at);
          std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
          size_t cl = lower.find("content-length:");
          need = cl == std::string::npos ? 0 : std::stoul(lower.substr(cl + 15));
        }
        if (body_at != std::string::npos && req.size() >= body_at + need) break;
      }
      std::lock_guard<std::mutex> lock(mu_);
      std::string status = "200 OK", body =
                                         "<R><UploadId>upload-1</UploadId><IsTruncated>false</"
                                         "IsTruncated><ETag>\"e\"</ETag></R>";
      if (requests_.size() < errors_.size()) {
        status = std::to_string(errors_[requests_.size()].first) + " Error";
        body = "<Error><Code>" + errors_[requests_.size()].second +
               "</Code><Message>scripted</Message></Error>";
      }
      bool head = req.rfind("HEAD", 0) == 0;
      std::string resp = "HTTP/1.1 " + status + "\r\nETag: \"e\"\r\nConnection: close\r\n" +
                         "Content-Length: " + std::to_string(head ? 0 : body.size()) + "\r\n\r\n" +
                         (head ? "" : body);
      (void)!::write(c, resp.data(), resp.size());
      ::close(c);
      requests_.push_back(req);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::vector<std::pair<int, std::string>> errors_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

S3Settings capture_settings(const CaptureServer& server, int max_retries) {
  S3Settings s;
  s.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
  s.credentials = {"AKIDDDPIPE", "secret", ""};
  s.max_retries = max_retries;
  return s;
}

TEST(S3Client, RetriesServerErrorsNotClientErrors) {
  {
    CaptureServer server({{503, "SlowDown"}, {500, "InternalError"}});
    S3Client(capture_settings(server, 3)).put_object("bkt", "k", "x");
    EXPECT_EQ(server.requests().size(), 3u) << "two failures, then success";
  }
  {
    CaptureServer server({{503, "SlowDown"}, {503, "SlowDown"}, {503, "SlowDown"}});
    core::Error e =
        error_of([&] { S3Client(capture_settings(server, 2)).head_object("bkt", "k"); });
    EXPECT_EQ(e.kind(), core::ErrorKind::kRetryable) << e.what();
    EXPECT_NE(std::string(e.what()).find("HeadObject s3://bkt/k: HTTP 503"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("(after 3 attempts)"), std::string::npos) << e.what();
    EXPECT_EQ(server.requests().size(), 3u);
  }
  {
    CaptureServer server({{400, "InvalidArgument"}, {503, "SlowDown"}});
    core::Error e =
        error_of([&] { S3Client(capture_settings(server, 3)).put_object("bkt", "k", "x"); });
    EXPECT_EQ(e.kind(), core::ErrorKind::kStorage) << e.what();
    EXPECT_NE(
        std::string(e.what()).find("PutObject s3://bkt/k: HTTP 400 InvalidArgument (scripted)"),
        std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("attempts"), std::string::npos) << e.what();
    EXPECT_EQ(server.requests().size(), 1u) << "a 4xx must not be retried";
  }
  {
    CaptureServer server({{404, "NoSuchKey"}});
    core::Error e =
        error_of([&] { S3Client(capture_settings(server, 3)).get_range("bkt", "k", 0, 1); });
    EXPECT_EQ(e.kind(), core::ErrorKind::kNotFound) << e.what();
    EXPECT_EQ(server.requests().size(), 1u);
  }
}

// The input botocore needs to sign a captured request the same way: method, URL, the headers
// ddpipe signed, body and time.
nlohmann::json botocore_input(const std::string& raw, const S3Settings& s, std::string* authz) {
  size_t body_at = raw.find("\r\n\r\n") + 4;
  std::istringstream lines(raw.substr(0, body_at));
  std::string line, method, target;
  std::getline(lines, line);
  std::istringstream(line) >> method >> target;
  std::map<std::string, std::string> headers;
  while (std::getline(lines, line) && line != "\r") {
    size_t colon = line.find(':');
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    value = value.substr(value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r") + 1);
    headers[name] = value;
  }
  *authz = headers["authorization"];
  std::string signed_list = authz->substr(authz->find("SignedHeaders=") + 14);
  signed_list = signed_list.substr(0, signed_list.find(','));
  nlohmann::json h = nlohmann::json::object();
  std::istringstream names(signed_list);
  for (std::string n; std::getline(names, n, ';');) h[n] = headers.at(n);
  return {{"method", method},
          {"url", "http://" + headers["host"] + target},
          {"headers", h},
          {"body", raw.substr(body_at)},
          {"unsigned", headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"},
          {"amz_date", headers["x-amz-date"]},
          {"access_key_id", s.credentials.access_key_id},
          {"secret_access_key", s.credentials.secret_access_key},
          {"token", s.credentials.session_token},
          {"region", s.region}};
}

TEST(S3Boto3, SignerMatchesBotocoreOnRealRequests) {
  REQUIRE_BOTO3();
  CaptureServer server;
  S3Settings s;
  s.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
  s.region = "eu-central-1";
  s.credentials = {"AKIDDDPIPE", "secret/with+chars=", ""};
  s.max_retries = 0;
  S3Client path(s);
  path.put_object("bkt", "models/m/model v1.pt", "body bytes", {{"x-amz-meta-note", "a  b"}});
  path.get_range("bkt", "dir/ü key", 5, 100);
  path.head_object("bkt", "x");
  path.list_objects_page("bkt", "pre fix/", "token+/=", 7);
  std::string id =
      path.create_multipart_upload("bkt", "mp", {{"x-amz-meta-origin", "ddpipe test"}});
  path.upload_part("bkt", "mp", id, 2, "part data");
  path.upload_part_copy("bkt", "mp", id, 3, "src", "a b/c", 0, 99);
  path.complete_multipart_upload("bkt", "mp", id, {"e1", "e2"});
  path.copy_object("src", "a+b", "bkt", "c");
  path.delete_object("bkt", "d");
  path.create_bucket("new-bucket");
  s.credentials.session_token = "session/token+=";
  s.path_style = false;
  s.endpoint = "http://localhost:" + std::to_string(server.port());
  S3Client vhost(s);
  vhost.put_object("bkt", "v/key", "v body");
  vhost.get_range("bkt", "v/key", 0, 3);

  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 13u) << [&] {
    std::string lines;
    for (auto& r : requests) lines += r.substr(0, r.find('\r')) + "\n";
    return lines;
  }();
  nlohmann::json input = nlohmann::json::array();
  std::vector<std::string> ours;
  for (size_t i = 0; i < requests.size(); ++i) {
    std::string authz;
    input.push_back(
        botocore_input(requests[i], i < 11 ? path.settings() : vhost.settings(), &authz));
    ours.push_back(authz);
  }
  // A presigned URL: botocore's query signer over the same object and time.
  std::string url = vhost.presign_url("GET", "bkt", "v/a key", 900);
  std::string date = url.substr(url.find("X-Amz-Date=") + 11, 16);
  input.push_back({{"method", "GET"},
                   {"url", url.substr(0, url.find('?'))},
                   {"headers", {{"host", "bkt.localhost:" + std::to_string(server.port())}}},
                   {"body", ""},
                   {"unsigned", true},
                   {"amz_date", date},
                   {"expires", 900},
                   {"access_key_id", s.credentials.access_key_id},
                   {"secret_access_key", s.credentials.secret_access_key},
                   {"token", s.credentials.session_token},
                   {"region", s.region}});

  testing::TempDir dir;
  core::write_file_atomic(dir / "in.json", input.dump());
  auto r = testing::run_command(testing::boto3_helper() + " sign < " + (dir / "in.json").string() +
                                " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto theirs = nlohmann::json::parse(r.output);
  ASSERT_EQ(theirs.size(), input.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i], theirs[i].get<std::string>()) << requests[i];
  }
  std::string botocore_url = theirs.back();
  auto sig = [](const std::string& u) { return u.substr(u.find("X-Amz-Signature=") + 16, 64); };
  EXPECT_EQ(sig(url), sig(botocore_url)) << url << "\n" << botocore_url;
}

}  // namespace
}  // namespace ddpipe::storage
