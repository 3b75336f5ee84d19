#include "dist/world.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"

namespace ddpipe::dist {
namespace {

class WorldEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                          "LOCAL_WORLD_SIZE"}) {
      unsetenv(v);
    }
  }
};

TEST_F(WorldEnv, NoEnvironmentIsSingleProcess) {
  WorldInfo w = world_from_env();
  EXPECT_EQ(w.world_size, 1);
  EXPECT_EQ(w.rank, 0);
}

TEST_F(WorldEnv, PyTorchJobContract) {
  setenv("WORLD_SIZE", "3", 1);
  setenv("RANK", "2", 1);
  setenv("MASTER_ADDR", "job-master-0", 1);
  setenv("MASTER_PORT", "23456", 1);
  WorldInfo w = world_from_env();
  EXPECT_EQ(w.world_size, 3);
  EXPECT_EQ(w.rank, 2);
  EXPECT_EQ(w.local_rank, 2);
  EXPECT_EQ(w.master_addr, "job-master-0");
  EXPECT_EQ(w.master_port, 23456);
}

TEST_F(WorldEnv, InconsistentEnvironmentIsAUsageError) {
  setenv("WORLD_SIZE", "2", 1);
  setenv("RANK", "2", 1);
  setenv("MASTER_ADDR", "x", 1);
  setenv("MASTER_PORT", "1", 1);
  EXPECT_THROW(world_from_env(), core::Error);
  setenv("RANK", "one", 1);
  EXPECT_THROW(world_from_env(), core::Error);
  setenv("RANK", "1", 1);
  unsetenv("MASTER_ADDR");
  EXPECT_THROW(world_from_env(), core::Error);
}

}  // namespace
}  // namespace ddpipe::dist
