// The ddpipe binary on an S3 store (the local radosgw of scripts/s3-test-server.sh; skipped
// without one): the whole pipeline, `models list`, `eval` through the dataset cache, and
// `ddpipe store ls|cp|rm` on S3 and on a local folder.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "registry/registry.h"
#include "s3_test_env.h"
#include "storage/local_store.h"
#include "storage/s3_store.h"

namespace ddpipe {
namespace {

using testing::run_command;

std::string ddpipe(const std::string& args) {
  return testing::s3_env_prefix() + testing::ddpipe_binary() + " " + args;
}

// tests/integration/pipeline_test.cpp's tiny synthetic job, on `store`.
std::string tiny_job(const std::string& store, const std::filesystem::path& cache) {
  return ddpipe("run --store " + store + " --set cache_dir=" + cache.string() +
                " --set name=tiny --set data.format=synthetic --set data.name=tiny-synth"
                " --set data.channels=1 --set data.height=12 --set data.width=12"
                " --set data.train_size=384 --set data.test_size=101 --set data.classes=4"
                " --set model.width=4 --set train.batch_size=32 --set train.threads=1"
                " --set loader.workers=1 --set deterministic=true --set dist.nproc=2 --epochs 1");
}

TEST(S3Pipeline, RunPublishesAndModelsListShowsTheVersion) {
  REQUIRE_S3_SERVER();
  testing::TempDir dir;
  const std::string bucket = testing::unique_bucket("pipe");
  const std::string store_url = "s3://" + bucket + "/team/artifacts";
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  auto r = run_command(tiny_job(store_url, dir / "cache"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Model version: " + store_url + "/models/tiny/model_v"),
            std::string::npos)
      << r.output;

  storage::S3Store store(store_url, *testing::s3_test_settings());
  registry::Registry reg(store);
  const std::string v = reg.resolve("tiny", "latest");
  auto m = reg.manifest_json("tiny", v);
  EXPECT_EQ(m["world_size"], 2);
  EXPECT_EQ(m["epochs"][0]["test_samples"], 101);
  EXPECT_FALSE(store.list("models/tiny/checkpoints/").empty());
  EXPECT_EQ(store.list("datasets/tiny-synth/").size(), 6u);  // 5 objects + latest pointer
  // The config stored with the version holds no secret.
  std::string secret = testing::s3_test_settings()->credentials.secret_access_key;
  EXPECT_EQ(m.dump().find(secret), std::string::npos);
  // Nor anything else the job stored (reports, run records, metrics, checkpoints, datasets) or
  // printed (docs/security.md).
  EXPECT_EQ(r.output.find(secret), std::string::npos);
  storage::S3Store whole("s3://" + bucket, *testing::s3_test_settings());
  const std::vector<storage::ObjectInfo> objects = whole.list("");
  EXPECT_GT(objects.size(), 10u);
  for (const storage::ObjectInfo& o : objects) {
    EXPECT_EQ(whole.get(o.key).find(secret), std::string::npos) << o.key;
  }

  auto list = run_command(ddpipe("models list --store " + store_url));
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find(v), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("model_latest"), std::string::npos) << list.output;

  // eval reads the dataset from S3 into a fresh cache (get_file, digest verified).
  auto ev = run_command(ddpipe("eval --store " + store_url +
                               " --model tiny --dataset tiny-synth"
                               " --cache-dir " +
                               (dir / "cache2").string() + " 2>/dev/null"));
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  EXPECT_EQ(nlohmann::json::parse(ev.output)["samples"], 101);

  auto ls = run_command(ddpipe("store ls --store " + store_url + " models/tiny/" + v + "/"));
  ASSERT_EQ(ls.exit_code, 0) << ls.output;
  EXPECT_NE(ls.output.find("models/tiny/" + v + "/manifest.json"), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("models/tiny/" + v + "/model.pt"), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("models/tiny/" + v + "/report.html"), std::string::npos) << ls.output;

  // The run's record and step history are in the bucket too.
  auto runs = run_command(ddpipe("runs list tiny --json --store " + store_url + " 2>/dev/null"));
  ASSERT_EQ(runs.exit_code, 0) << runs.output;
  const auto records = nlohmann::json::parse(runs.output);
  ASSERT_EQ(records.size(), 1u) << runs.output;
  EXPECT_EQ(records[0]["status"], "succeeded");
  EXPECT_EQ(records[0]["version"], v);
  EXPECT_FALSE(reg.read_steps("tiny", v).empty());
}

TEST(StoreCommand, CopyListRemoveOnS3) {
  REQUIRE_S3_SERVER();
  testing::TempDir dir;
  const std::string bucket = testing::unique_bucket("cli");
  testing::EmptyBucketAtEnd cleanup(*testing::s3_test_settings(), bucket);
  const std::string data = testing::random_bytes((7u << 20) + 5, 21);
  core::write_file_atomic(dir / "in.bin", data);
  auto ok = [&](const std::string& args) {
    auto r = run_command(ddpipe(args));
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.output;
    return r.output;
  };
  ok("store cp " + (dir / "in.bin").string() + " s3://" + bucket + "/a/in.bin");
  ok("store cp " + (dir / "in.bin").string() + " s3://" + bucket + "/b/");     // keeps the name
  ok("store cp s3://" + bucket + "/a/in.bin s3://" + bucket + "/c/copy.bin");  // server-side
  ok("store cp s3://" + bucket + "/c/copy.bin " + dir.path().string());        // into a folder
  EXPECT_TRUE(core::read_file(dir / "copy.bin") == data);
  ok("store cp s3://" + bucket + "/b/in.bin " + (dir / "out.bin").string());
  EXPECT_TRUE(core::read_file(dir / "out.bin") == data);

  std::string ls = ok("store ls --store s3://" + bucket);
  const std::string size = std::to_string(data.size());
  for (const char* key : {"a/in.bin", "b/in.bin", "c/copy.bin"}) {
    EXPECT_NE(ls.find(size + "  " + key), std::string::npos) << ls;
  }
  EXPECT_EQ(ok("store ls s3://" + bucket + "/a/"),
            std::string(12 - size.size(), ' ') + size + "  a/in.bin\n");
  ok("store rm --store s3://" + bucket + " a/in.bin s3://" + bucket + "/b/in.bin");
  ls = ok("store ls --store s3://" + bucket);
  EXPECT_EQ(ls.find("in.bin"), std::string::npos) << ls;

  auto missing = run_command(ddpipe("store cp s3://" + bucket + "/nope " + (dir / "x").string()));
  EXPECT_EQ(missing.exit_code, 4) << missing.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "x"));
  EXPECT_EQ(run_command(ddpipe("store mv a b")).exit_code, 2);
}

TEST(StoreCommand, WrongSecretIsAClearAuthenticationError) {
  REQUIRE_S3_SERVER();
  const std::string secret = "definitely-wrong-secret-81f3";
  auto r = run_command(testing::s3_env_prefix() + "AWS_SECRET_ACCESS_KEY=" + secret + " " +
                       testing::ddpipe_binary() + " store ls --store s3://" +
                       testing::unique_bucket("auth"));
  EXPECT_EQ(r.exit_code, 5) << r.output;
  EXPECT_NE(r.output.find("authentication failed for access key id '" +
                          testing::s3_test_settings()->credentials.access_key_id + "'"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find(secret), std::string::npos) << r.output;

  // Secrets given as config are redacted in `config show` as well.
  auto show =
      run_command(testing::ddpipe_binary() + " config show --set s3.secret_access_key=" + secret);
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_EQ(show.output.find(secret), std::string::npos) << show.output;
  EXPECT_NE(show.output.find("secret_access_key: <redacted>"), std::string::npos) << show.output;
}

TEST(StoreCommand, LocalStore) {
  testing::TempDir dir;
  storage::LocalStore store(dir / "store");
  store.put("models/a/x.json", "{}");
  store.put("models/b/y.bin", "yy");
  const std::string bin = testing::ddpipe_binary() + " store ";
  auto ls = run_command(bin + "ls --store " + (dir / "store").string() + " models/");
  ASSERT_EQ(ls.exit_code, 0) << ls.output;
  EXPECT_EQ(ls.output, "           2  models/a/x.json\n           2  models/b/y.bin\n");
  auto cp = run_command(bin + "cp " + (dir / "store/models/b/y.bin").string() + " " +
                        (dir / "y.copy").string());
  ASSERT_EQ(cp.exit_code, 0) << cp.output;
  EXPECT_EQ(core::read_file(dir / "y.copy"), "yy");
  auto rm = run_command(bin + "rm --store " + (dir / "store").string() + " models/a/x.json");
  ASSERT_EQ(rm.exit_code, 0) << rm.output;
  EXPECT_FALSE(store.exists("models/a/x.json"));
}

}  // namespace
}  // namespace ddpipe
