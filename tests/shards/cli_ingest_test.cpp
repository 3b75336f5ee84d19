// `ddpipe ingest` with data.form=sharded, end to end: the real binary shards a folder of real
// images into a store folder, and Python reads the shards back as WebDataset groups them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

TEST(ShardsCli, OtherFormatsAreNotYetSharded) {
  ddpipe::testing::TempDir dir;
  const auto r = ddpipe::testing::run_command(
      ddpipe::testing::ddpipe_binary() + " ingest --store " + (dir / "store").string() +
      " --set data.format=idx --set data.form=sharded --data-path " + dir.path().string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("image-folder only; not yet 'idx'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ddpipe::shards
