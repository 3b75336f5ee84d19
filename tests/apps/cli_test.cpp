// The ddpipe command line, run as a user runs it: the real binary, its exit codes and output.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ddpipe
