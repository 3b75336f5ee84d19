// Keys and names on a local store (docs/security.md): every hostile key refused on every
// operation with nothing written anywhere, symbolic links inside the folder that lead out of it
// refused, the name rule and its limits, and the warning about MinIO's default credentials.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "hostile_keys.h"
#include "storage/local_store.h"
#include "telemetry/capture_stderr.h"
#include "test_util.h"

namespace ddpipe::storage {
namespace {

namespace fs = std::filesystem;

TEST(LocalStoreNames, EveryHostileKeyIsRefusedAndNothingIsWrittenAnywhere) {
  testing::TempDir dir;
  core::write_file_atomic(dir / "outside" / "secret.txt", "SECRET");
  fs::create_directories(dir / "scratch");
  LocalStore store(dir / "area" / "store");
  testing::expect_store_refuses_hostile_keys(store, dir / "scratch");
  // The one file beside the store, named by the traversal that would reach it.
  EXPECT_NE(testing::usage_error([&] {
              store.get("../../outside/secret.txt");
            }).find("'.' and '..' are not allowed"),
            std::string::npos);
  EXPECT_EQ(
      testing::tree(dir.path()),
      (std::vector<std::string>{"area", "area/store", "area/store/ok", "area/store/ok/x", "outside",
                                "outside/secret.txt", "scratch", "scratch/source"}));
  EXPECT_EQ(core::read_file(dir / "outside" / "secret.txt"), "SECRET");
}

// A folder inside the store that is a symbolic link to one outside: no key through it is read,
// written, removed or listed.
TEST(LocalStoreNames, SymbolicLinkOutOfTheFolderIsRefused) {
  testing::TempDir dir;
  core::write_file_atomic(dir / "outside" / "secret.txt", "SECRET");
  LocalStore store(dir / "store");
  store.put("models/m/x", "1");
  fs::create_directory_symlink(dir / "outside", dir / "store" / "models" / "link");
  fs::create_symlink(dir / "outside" / "secret.txt", dir / "store" / "models" / "file-link");
  auto expect_refused = [](const std::string& what, const std::function<void()>& f) {
    SCOPED_TRACE(what);
    const std::string m = testing::error_of(core::ErrorKind::kData, f);
    EXPECT_NE(m.find("outside the store's folder"), std::string::npos) << m;
  };
  expect_refused("get", [&] { store.get("models/link/secret.txt"); });
  expect_refused("get of a file link", [&] { store.get("models/file-link"); });
  expect_refused("get_file", [&] { store.get_file("models/link/secret.txt", dir / "got"); });
  expect_refused("exists", [&] { store.exists("models/link/secret.txt"); });
  expect_refused("put", [&] { store.put("models/link/new.txt", "x"); });
  expect_refused("put into a new folder", [&] { store.put("models/link/deeper/new.txt", "x"); });
  expect_refused("remove", [&] { store.remove("models/link/secret.txt"); });
  EXPECT_TRUE(store.list("models/link/").empty());
  std::vector<std::string> keys;
  for (const ObjectInfo& o : store.list("")) keys.push_back(o.key);
  EXPECT_EQ(keys, std::vector<std::string>{"models/m/x"});
  EXPECT_EQ(testing::tree(dir / "outside"), std::vector<std::string>{"secret.txt"});
  EXPECT_EQ(core::read_file(dir / "outside" / "secret.txt"), "SECRET");
  EXPECT_FALSE(fs::exists(dir / "got"));
}

// Links that stay inside the folder are followed, and a store folder that is itself a link
// (e.g. ./artifacts on a bigger disk) works.
TEST(LocalStoreNames, SymbolicLinksThatStayInsideAreFollowed) {
  testing::TempDir dir;
  fs::create_directories(dir / "real");
  fs::create_directory_symlink(dir / "real", dir / "store");
  LocalStore store(dir / "store");
  store.put("datasets/d/a.bin", "A");
  fs::create_directory_symlink("d", dir / "real" / "datasets" / "same");
  EXPECT_EQ(store.get("datasets/same/a.bin"), "A");
  store.put("datasets/same/b.bin", "B");
  EXPECT_EQ(core::read_file(dir / "real" / "datasets" / "d" / "b.bin"), "B");
}

TEST(Names, HostileNamesAreUsageErrorsNamingTheField) {
  for (const testing::Hostile& h : testing::hostile_names()) {
    SCOPED_TRACE(h.label);
    EXPECT_FALSE(is_valid_name(h.text));
    const std::string m = testing::usage_error([&] { validate_name("model name", h.text); });
    EXPECT_EQ(m.rfind("model name '", 0), 0u) << m;
    EXPECT_NE(m.find("expected 1 to 128 letters, digits"), std::string::npos) << m;
    for (char c : m) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << "raw control in " << m;
  }
}

TEST(Names, ValidNamesPass) {
  for (const std::string& name :
       {std::string("fmnist-resnet"), std::string("model_v20261130_123702"), std::string("a.b..c"),
        std::string("run-20261130T1015Z"), std::string(128, 'n')}) {
    EXPECT_TRUE(is_valid_name(name)) << name;
    EXPECT_NO_THROW(validate_name("model name", name));
  }
}

TEST(Names, KeyLimitsAreTheDocumentedOnes) {
  std::string longest;  // "k/k/…/kk": 1024 bytes of short segments
  while (longest.size() < kMaxKeyBytes) longest += "k/";
  longest.back() = 'k';
  ASSERT_EQ(longest.size(), kMaxKeyBytes);
  EXPECT_NO_THROW(validate_key(longest));
  EXPECT_NO_THROW(validate_key("a/" + std::string(kMaxSegmentBytes, 's')));
  EXPECT_NE(
      testing::usage_error([&] { validate_key(longest + "k"); }).find("longer than 1024 bytes"),
      std::string::npos);
  EXPECT_NE(testing::usage_error([] {
              validate_key("a/" + std::string(kMaxSegmentBytes + 1, 's'));
            }).find("longer than 255 bytes"),
            std::string::npos);
  EXPECT_NE(testing::usage_error([] {
              validate_key(std::string("a\0b", 3));
            }).find("'a\\x00b': control characters are not allowed"),
            std::string::npos);
}

TEST(Names, PrintableEscapesControlsAndCutsLongText) {
  EXPECT_EQ(printable("a\nb\x7f\xff"), "a\\x0ab\\x7f\\xff");
  EXPECT_EQ(printable(std::string(300, 'x')), std::string(200, 'x') + "... (300 bytes)");
}

TEST(Names, StoreUrlPrefixFollowsTheKeyRule) {
  EXPECT_NE(testing::usage_error([] {
              parse_store_url("s3://bucket/../x");
            }).find("'.' and '..' are not allowed"),
            std::string::npos);
  EXPECT_NE(
      testing::usage_error([] { parse_store_url("s3://bucket/a\nb"); }).find("control characters"),
      std::string::npos);
}

// Opening (not yet using) an S3 store: no request is sent, so any endpoint does.
std::string open_s3_and_capture_log(const std::string& access_key, const std::string& secret) {
  core::S3Config s3;
  s3.endpoint = "http://127.0.0.1:9";
  s3.access_key_id = access_key;
  s3.secret_access_key = secret;
  telemetry::CaptureStderr capture;
  open_store("s3://ddpipe-minio-check/prefix", s3);
  return capture.text();
}

TEST(MinioDefaults, OpeningAnS3StoreWithThemWarns) {
  EXPECT_TRUE(is_minio_default_credentials("minioadmin", "minioadmin"));
  EXPECT_FALSE(is_minio_default_credentials("minioadmin", "a-long-random-secret"));
  EXPECT_FALSE(is_minio_default_credentials("ddpipe", "minioadmin"));
  const std::string log = open_s3_and_capture_log("minioadmin", "minioadmin");
  EXPECT_NE(log.find("INSECURE: the S3 credentials are MinIO's defaults"), std::string::npos)
      << log;
  EXPECT_NE(log.find("s3://ddpipe-minio-check/prefix"), std::string::npos) << log;
  EXPECT_EQ(open_s3_and_capture_log("ddpipe", "a-long-random-secret"), "");
}

}  // namespace
}  // namespace ddpipe::storage
