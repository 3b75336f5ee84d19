// Loading, readiness and hot reload of the served version.
#include "serve/model_host.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "fixtures.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::serve {
namespace {

TEST(ModelHost, NotReadyUntilAModelExistsThenLoads) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  ModelHost host(store, "m", "latest");
  EXPECT_FALSE(host.refresh());
  EXPECT_EQ(host.current(), nullptr);
  ModelStatus s = host.status();
  EXPECT_FALSE(s.ready);
  EXPECT_NE(s.error.find("no model named 'm'"), std::string::npos) << s.error;

  const std::string v1 = fixtures::publish_model(store, "m", 1);
  EXPECT_TRUE(host.refresh());
  ASSERT_NE(host.current(), nullptr);
  EXPECT_EQ(host.current()->version, v1);
  s = host.status();
  EXPECT_TRUE(s.ready);
  EXPECT_EQ(s.error, "");
  EXPECT_EQ(s.loads, 1);
  EXPECT_FALSE(host.refresh()) << "same version: nothing to do";
}

TEST(ModelHost, FollowsModelLatestAndKeepsOldVersionAliveForHolders) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  const std::string v1 = fixtures::publish_model(store, "m", 1);
  ModelHost host(store, "m", "latest");
  ASSERT_TRUE(host.refresh());
  ModelPtr held = host.current();
  const std::string v2 = fixtures::publish_model(store, "m", 2);
  ASSERT_NE(v1, v2);
  EXPECT_TRUE(host.refresh());
  EXPECT_EQ(host.current()->version, v2);
  EXPECT_EQ(held->version, v1);  // a request holding v1 finishes with it
  std::vector<float> zeros(28 * 28);
  EXPECT_EQ(eval::classify(*held, zeros.data(), 1).size(), 1u);
}

TEST(ModelHost, FollowsAPromotedAliasOnly) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  registry::Registry reg(store);
  const std::string v1 = fixtures::publish_model(store, "m", 1);
  reg.set_alias("m", "prod", v1);
  ModelHost host(store, "m", "prod");
  ASSERT_TRUE(host.refresh());
  const std::string v2 = fixtures::publish_model(store, "m", 2);  // moves model_latest only
  EXPECT_FALSE(host.refresh());
  EXPECT_EQ(host.current()->version, v1);
  reg.set_alias("m", "prod", v2);
  EXPECT_TRUE(host.refresh());
  EXPECT_EQ(host.current()->version, v2);
}

TEST(ModelHost, BrokenVersionKeepsThePreviousOneAndIsNotRetried) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  registry::Registry reg(store);
  const std::string v1 = fixtures::publish_model(store, "m", 1);
  ModelHost host(store, "m", "latest");
  ASSERT_TRUE(host.refresh());
  nlohmann::json manifest = reg.manifest_json("m", v1);
  reg.publish("m", {{"model.pt", "not a model"}}, manifest);
  EXPECT_FALSE(host.refresh());
  EXPECT_EQ(host.current()->version, v1);
  ModelStatus s = host.status();
  EXPECT_TRUE(s.ready);
  EXPECT_FALSE(s.error.empty());
  EXPECT_EQ(s.load_failures, 1);
  EXPECT_FALSE(host.refresh());
  EXPECT_EQ(host.status().load_failures, 1) << "the same broken version was loaded again";
  const std::string v3 = fixtures::publish_model(store, "m", 3);
  EXPECT_TRUE(host.refresh());
  EXPECT_EQ(host.current()->version, v3);
  EXPECT_EQ(host.status().error, "");
}

TEST(ModelHost, WatchSwapsWithinThePollInterval) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path());
  fixtures::publish_model(store, "m", 1);
  ModelHost host(store, "m", "latest");
  host.watch(0.05);
  auto wait_for = [&](const std::string& version) {
    for (int i = 0; i < 200; ++i) {
      ModelPtr m = host.current();
      if (m && (version.empty() || m->version == version)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  };
  ASSERT_TRUE(wait_for(""));
  const std::string v2 = fixtures::publish_model(store, "m", 2);
  EXPECT_TRUE(wait_for(v2));
  const auto t0 = std::chrono::steady_clock::now();
  host.stop();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
}

}  // namespace
}  // namespace ddpipe::serve
