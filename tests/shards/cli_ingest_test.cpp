// `ddpipe ingest` with data.form=sharded, end to end: the real binary shards a folder of real
// images into a store folder, and Python reads the shards back as WebDataset groups them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/fs.h"
#include "fixtures.h"
#include "shards_fixtures.h"
#include "test_util.h"

namespace ddpipe::shards {
namespace {

// WebDataset's grouping (webdataset.tariterators.base_plus_ext and group_by_keys): the key is
// the name up to the first '.' of its last path part; a sample is the adjacent members of a
// key. Checks every shard of the index against its sha256 and that every sample is one image
// and one class.
const char* const kReadAsWebDataset = R"PY(
import hashlib, json, re, sys, tarfile
store, name = sys.argv[1], sys.argv[2]
digest = open(f"{store}/datasets/{name}/latest").read().strip()
index = json.load(open(f"{store}/datasets/{name}/{digest}/index.json"))
keys, counts = set(), {}
for split in ("train", "test"):
    n = 0
    for shard in index["splits"][split]["shards"]:
        path = f"{store}/{shard['key']}"
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == shard["sha256"], path
        samples, current = [], None
        with tarfile.open(path) as tar:
            for m in tar:
                key, ext = re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", m.name).groups()
                if current is None or current["__key__"] != key:
                    current = {"__key__": key}
                    samples.append(current)
                assert ext not in current, (path, m.name)
                current[ext] = tar.extractfile(m).read()
        assert samples[0]["__key__"] == shard["first_key"], path
        for s in samples:
            assert sorted(s) in (["__key__", "cls", "jpg"], ["__key__", "cls", "png"]), sorted(s)
            assert s["__key__"] not in keys
            keys.add(s["__key__"])
            assert 0 <= int(s["cls"]) < len(index["classes"])
        n += len(samples)
    assert n == index["splits"][split]["samples"], (split, n)
    counts[split] = n
print(json.dumps(counts))
)PY";

TEST(ShardsCli, IngestWritesShardsThatPythonReadsAsWebDataset) {
  ddpipe::testing::TempDir dir;
  const int files = ddpipe::testing::write_image_folder(dir / "images", {"a", "b"}, 15, 3);
  // The logs (stderr) aside: run_command captures both streams.
  const std::string ingest = "(" + ddpipe::testing::ddpipe_binary() + " ingest --store " +
                             (dir / "store").string() + " --dataset pets --data-path " +
                             (dir / "images").string() +
                             " --set data.format=image-folder --set data.form=sharded "
                             "--set data.shard_mb=1 2>/dev/null)";
  const auto r = ddpipe::testing::run_command(ingest);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto out = nlohmann::json::parse(r.output);
  EXPECT_EQ(out["form"], "sharded");
  EXPECT_EQ(out["train"].get<int>() + out["test"].get<int>(), files);
  EXPECT_FALSE(out["already_present"].get<bool>());

  ddpipe::testing::write_bytes(dir / "read.py", kReadAsWebDataset);
  const auto py = ddpipe::testing::run_command("/usr/bin/python3 " + (dir / "read.py").string() +
                                               " " + (dir / "store").string() + " pets");
  ASSERT_EQ(py.exit_code, 0) << py.output;
  const auto counts = nlohmann::json::parse(py.output);
  EXPECT_EQ(counts["train"], out["train"]);
  EXPECT_EQ(counts["test"], out["test"]);

  const auto again = ddpipe::testing::run_command(ingest);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(nlohmann::json::parse(again.output)["already_present"].get<bool>());
  EXPECT_EQ(nlohmann::json::parse(again.output)["digest"], out["digest"]);
}

// Shard file name -> inode in a LocalStore's pool: a put replaces the file (a new inode).
std::map<std::string, ino_t> pool_inodes(const std::filesystem::path& pool) {
  std::map<std::string, ino_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(pool, ec)) {
    struct stat st {};
    if (e.path().extension() == ".tar" && ::stat(e.path().c_str(), &st) == 0) {
      out[e.path().filename().string()] = st.st_ino;
    }
  }
  return out;
}

pid_t spawn_ingest(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// The first bytes of a `size`-byte PNG of 64×64 RGB pixels whose IDAT chunk is the rest (its
// content and CRC left to the caller): a header that libpng's png_read_info accepts.
std::string png_header_of(size_t size) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  const std::string ihdr = "IHDR" + be32(64) + be32(64) + std::string("\x08\x02\0\0\0", 5);
  const auto crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(ihdr.data()), static_cast<uInt>(ihdr.size())));
  std::string png = "\x89PNG\r\n\x1a\n" + be32(13) + ihdr + be32(crc);
  return png + be32(static_cast<uint32_t>(size - png.size() - 12)) + "IDAT";
}

TEST(ShardsCli, AKilledIngestResumesWithoutPuttingItsShardsAgain) {
  ddpipe::testing::TempDir dir;
  // 120 files of 1 MB that are PNGs by their header (the ingest never decodes the pixels): one
  // a shard.
  std::mt19937 rng(5);
  for (int i = 0; i < 120; ++i) {
    std::string bytes = png_header_of(1000000);
    while (bytes.size() < 1000000) bytes.push_back(static_cast<char>(rng()));
    ddpipe::testing::write_bytes(
        dir / "images" / (i % 2 ? "a" : "b") / (std::to_string(i) + ".png"), bytes);
  }
  auto args = [&](const std::string& store) {
    return std::vector<std::string>{ddpipe::testing::ddpipe_binary(),
                                    "ingest",
                                    "--store",
                                    (dir / store).string(),
                                    "--dataset",
                                    "big",
                                    "--data-path",
                                    (dir / "images").string(),
                                    "--set",
                                    "data.format=image-folder",
                                    "--set",
                                    "data.form=sharded",
                                    "--set",
                                    "data.shard_mb=1"};
  };
  const std::filesystem::path pool = dir / "store" / "datasets" / "big" / "shards";
  const pid_t pid = spawn_ingest(args("store"));
  ASSERT_GT(pid, 0);
  while (pool_inodes(pool).size() < 3 && waitpid(pid, nullptr, WNOHANG) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const bool killed = kill(pid, SIGKILL) == 0;
  waitpid(pid, nullptr, 0);
  const auto before = pool_inodes(pool);
  // 117 MB were still to be written when the third shard appeared: the kill lands mid-ingest.
  ASSERT_TRUE(killed && before.size() < 120)
      << "the ingest ended before it was killed (" << before.size() << " of 120 shards)";
  EXPECT_FALSE(std::filesystem::exists(dir / "store" / "datasets" / "big" / "latest"));

  auto rerun = args("store");
  std::string cmd;
  for (const auto& a : rerun) cmd += a + " ";
  const auto r = ddpipe::testing::run_command("(" + cmd + "2>/dev/null)");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto out = nlohmann::json::parse(r.output);
  EXPECT_EQ(out["train"].get<int>() + out["test"].get<int>(), 120);
  const auto after = pool_inodes(pool);
  for (const auto& [name, inode] : before) {
    ASSERT_TRUE(after.count(name)) << name;
    EXPECT_EQ(after.at(name), inode) << name << " was put again";
  }
  std::string clean_cmd;
  for (const auto& a : args("clean")) clean_cmd += a + " ";
  const auto fresh = ddpipe::testing::run_command("(" + clean_cmd + "2>/dev/null)");
  ASSERT_EQ(fresh.exit_code, 0) << fresh.output;
  EXPECT_EQ(nlohmann::json::parse(fresh.output)["digest"], out["digest"]);
}

// The default job's dataset (Fashion-MNIST, IDX) re-encoded into shards and trained from them
// by `ddpipe run`: a few steps of one epoch, evaluated on the whole test split.
TEST(ShardsCli, RunTrainsFromFashionMnistReencodedIntoShards) {
  ASSERT_TRUE(std::filesystem::exists("/usr/share/datasets/fashion-mnist"))
      << "/usr/share/datasets/fashion-mnist is missing: apt-get install dataset-fashion-mnist";
  ddpipe::testing::TempDir dir;
  const auto r = ddpipe::testing::run_command(
      ddpipe::testing::ddpipe_binary() + " run --store " + (dir / "store").string() +
      " --set cache_dir=" + (dir / "cache").string() +
      " --set name=fm-sharded --set data.form=sharded --set features.image_size=28"
      " --set train.max_steps_per_epoch=3 --epochs 1 --set train.threads=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Trained fm-sharded on fashion-mnist with 2 ranks"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("\"test_samples\":10000"), std::string::npos) << r.output;
  const auto store = dir / "store" / "datasets" / "fashion-mnist";
  const std::string digest = core::read_file(store / "latest").substr(0, 64);
  const auto index = nlohmann::json::parse(core::read_file(store / digest / "index.json"));
  EXPECT_EQ(index["source"]["format"], "idx");
  EXPECT_EQ(index["splits"]["train"]["samples"], 60000);
}

TEST(ShardsCli, BadImagesFailOrAreSkippedByTheSetting) {
  ddpipe::testing::TempDir dir;
  const int files = ddpipe::testing::write_image_folder(dir / "images", {"a", "b"}, 4, 3);
  ddpipe::testing::write_bytes(dir / "images" / "b" / "notes.png", "these are notes");
  const std::string ingest = ddpipe::testing::ddpipe_binary() + " ingest --store " +
                             (dir / "store").string() + " --dataset pets --data-path " +
                             (dir / "images").string() +
                             " --set data.format=image-folder --set data.form=sharded";
  const auto fail = ddpipe::testing::run_command(ingest);
  EXPECT_EQ(fail.exit_code, 3) << fail.output;
  EXPECT_NE(fail.output.find((dir / "images" / "b" / "notes.png").string()), std::string::npos)
      << fail.output;
  const auto skip =
      ddpipe::testing::run_command("(" + ingest + " --set data.bad_images=skip 2>/dev/null)");
  ASSERT_EQ(skip.exit_code, 0) << skip.output;
  const auto out = nlohmann::json::parse(skip.output);
  EXPECT_EQ(out["skipped_files"], 1);
  EXPECT_EQ(out["train"].get<int>() + out["test"].get<int>(), files);
}

}  // namespace
}  // namespace ddpipe::shards
