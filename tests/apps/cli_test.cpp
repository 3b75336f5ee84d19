// The ddpipe command line, run as a user runs it: the real binary, its exit codes and output.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace ddpipe {
namespace {

using testing::ddpipe_binary;
using testing::run_command;

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Cli, CommittedConfigDocsAreTheGeneratedOnes) {
  const std::string committed = read(std::string(DDPIPE_SOURCE_DIR) + "/docs/configuration.md");
  const auto r = run_command(ddpipe_binary() + " config docs 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, committed)
      << "docs/configuration.md is out of date; regenerate it with\n"
         "  build/apps/ddpipe/ddpipe config docs > docs/configuration.md";
}

TEST(Cli, FlagsAndSetsApplyInCommandLineOrder) {
  auto r = run_command(ddpipe_binary() +
                       " config show --set train.epochs=3 --epochs 4 --set=train.epochs=5 "
                       "--lr 0.5 -c " +
                       DDPIPE_SOURCE_DIR + "/configs/default.yaml --resume");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("epochs: 5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lr: 0.5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resume: true"), std::string::npos) << r.output;
  r = run_command(ddpipe_binary() + " config show --set train.epochs=3 --epochs 4");
  EXPECT_NE(r.output.find("epochs: 4"), std::string::npos) << r.output;
}

TEST(Cli, BadCommandLinesExitTwoAndSayWhy) {
  auto r = run_command(ddpipe_binary() + " run --no-such-flag");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--no-such-flag"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ddpipe run --help"), std::string::npos) << r.output;
  r = run_command(ddpipe_binary() + " frobnicate");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown command 'frobnicate'"), std::string::npos) << r.output;
  r = run_command(ddpipe_binary() + " run --epochs");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_command(ddpipe_binary() + " config show --set train.epoch=3 --arch vgg");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("did you mean 'train.epochs'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model.arch: must be one of resnet-mini, resnet18, resnet18-cifar"),
            std::string::npos)
      << r.output;
  r = run_command(ddpipe_binary() + " store rm");  // KEY... needs one
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_command(ddpipe_binary() + " store cp only-one-argument");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_command(ddpipe_binary());
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(Cli, HelpIsGeneratedFromTheDeclarations) {
  auto r = run_command(ddpipe_binary() + " --help");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* command : {"run", "ingest", "train", "launch", "eval", "predict", "models",
                              "store", "config", "serve", "ui", "k8s"}) {
    EXPECT_NE(r.output.find(std::string("\n  ") + command + " "), std::string::npos) << command;
  }
  EXPECT_NE(r.output.find("Exit codes"), std::string::npos) << r.output;
  r = run_command(ddpipe_binary() + " run --help");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Usage: ddpipe run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--epochs N"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--set train.epochs=N"), std::string::npos) << r.output;
  // The key list comes from the config schema.
  EXPECT_NE(r.output.find("heartbeat_timeout_s"), std::string::npos) << r.output;
  r = run_command(ddpipe_binary() + " models show --help");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Usage: ddpipe models show NAME [REF]"), std::string::npos) << r.output;
}

// Hostile names on the command line (and in $DDPIPE_RUN_ID): each a usage error (exit 2) naming
// the field, before anything is read or written; nothing appears beside the store.
TEST(Cli, HostileNamesAreUsageErrorsNamingTheField) {
  testing::TempDir dir;
  const std::string store = " --store " + (dir / "store").string();
  const std::string bin = ddpipe_binary();
  struct Case {
    std::string command, fragment;
  };
  const std::vector<Case> cases = {
      {bin + " train" + store + " --run-id ../x", "train.run_id (or $DDPIPE_RUN_ID) '../x'"},
      {"DDPIPE_RUN_ID=a/b " + bin + " launch" + store, "train.run_id (or $DDPIPE_RUN_ID) 'a/b'"},
      {bin + " run" + store + " --name ../m", "name '../m' is invalid"},
      {bin + " models show" + store + " ..%2F..%2Fetc", "model name '..%2F..%2Fetc' is invalid"},
      {bin + " models show" + store + " m ../../etc", "version or alias '../../etc' is invalid"},
      {bin + " models promote" + store + " m latest --alias /etc/passwd",
       "alias '/etc/passwd' is invalid"},
      {bin + " runs show" + store + " m ../../etc", "run id '../../etc' is invalid"},
      {bin + " store rm" + store + " ../x", "invalid store key '../x'"},
      {bin + " store ls" + store + " ../", "invalid store prefix '../'"},
      {"AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s AWS_ENDPOINT_URL_S3=http://127.0.0.1:9 " + bin +
           " store cp /etc/hostname s3://ddpipe-names/a/../../x",
       "invalid store key 'a/../../x'"},
  };
  for (const Case& c : cases) {
    const testing::CommandResult r = run_command(c.command);
    EXPECT_EQ(r.exit_code, 2) << c.command << "\n" << r.output;
    EXPECT_NE(r.output.find(c.fragment), std::string::npos) << c.command << "\n" << r.output;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "a refused command wrote beside the store";
}

// Any command that opens an S3 store with MinIO's default credentials warns (docs/security.md).
TEST(Cli, MinioDefaultCredentialsAreALoudWarning) {
  const testing::CommandResult r = run_command(
      "AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin "
      "AWS_ENDPOINT_URL_S3=http://127.0.0.1:9 " +
      ddpipe_binary() +
      " store ls --store s3://ddpipe-minio --set s3.max_retries=0 --set s3.timeout_s=1");
  EXPECT_NE(r.output.find("INSECURE: the S3 credentials are MinIO's defaults"), std::string::npos)
      << r.output;
}

// `ddpipe k8s render` repeats its command line in the header: the keys the config schema declares
// secret are redacted there (and dropped from the ConfigMap), the others shown as given.
TEST(Cli, K8sRenderHeaderRedactsTheSchemaSecrets) {
  const testing::CommandResult r = run_command(
      ddpipe_binary() +
      " k8s render --set s3.secret_access_key=TOPSECRET-1 --set s3.session_token=TOPSECRET-2"
      " --set serve.auth_token_env=SERVE_TOKEN 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("TOPSECRET"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--set s3.secret_access_key=<redacted>"), std::string::npos);
  EXPECT_NE(r.output.find("--set s3.session_token=<redacted>"), std::string::npos);
  EXPECT_NE(r.output.find("--set serve.auth_token_env=SERVE_TOKEN"), std::string::npos);
}

}  // namespace
}  // namespace ddpipe
