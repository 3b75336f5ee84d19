#include "dist/world.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"

namespace ddpipe::dist {
namespace {

class WorldEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v :
         {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE",
          "PET_NNODES", "PET_NODE_RANK", "PET_NPROC_PER_NODE", "PET_MASTER_ADDR", "PET_MASTER_PORT",
          "PET_RDZV_ENDPOINT", "PET_RDZV_BACKEND", "PET_MAX_RESTARTS", "PYTHONUNBUFFERED"}) {
      unsetenv(v);
    }
  }
  void TearDown() override { SetUp(); }
};

using testing::usage_error;

// The env the training operator v1.8.1 gives each pod of the examples in ../shared (derived
// from its source; see PROVENANCE.md there).
nlohmann::json golden_pods() {
  const auto dir = testing::shared_dir();
  if (dir.empty()) return nullptr;
  return nlohmann::json::parse(
      core::read_file(dir / "testdata/k8s/pytorchjob_v1.8.1_expected_env.json"));
}

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

TEST_F(WorldEnv, EveryPodOfTheOperatorsExampleKnowsItsRank) {
  const auto golden = golden_pods();
  if (golden.is_null()) GTEST_SKIP() << "../shared is absent: no golden PyTorchJob env";
  const auto& pods = golden["cases"][0]["pods"];
  ASSERT_EQ(pods.size(), 2u);
  int64_t expected_rank = 0;
  for (const auto& name :
       {"pytorch-dist-mnist-gloo-master-0", "pytorch-dist-mnist-gloo-worker-0"}) {
    SetUp();
    for (const auto& kv : pods[name]["env"])
      setenv(kv[0].get<std::string>().c_str(), kv[1].get<std::string>().c_str(), 1);
    WorldInfo w = world_from_env();
    EXPECT_EQ(w.contract, "pytorchjob");
    EXPECT_EQ(w.rank, expected_rank++);
    EXPECT_EQ(w.world_size, 2);
    EXPECT_EQ(w.local_rank, 0);  // one process per pod: all of the pod's cores are its own
    EXPECT_EQ(w.local_world_size, 1);
    EXPECT_EQ(w.master_addr, "pytorch-dist-mnist-gloo-master-0");
    EXPECT_EQ(w.master_port, 23456);
  }
}

TEST_F(WorldEnv, ElasticPodsAreRefusedClearly) {
  const auto golden = golden_pods();
  if (golden.is_null()) GTEST_SKIP() << "../shared is absent: no golden PyTorchJob env";
  for (const auto& kv :
       golden["cases"][1]["pods"]["elastic-example-echo-worker-1"]["env_after_user_env"]) {
    setenv(kv[0].get<std::string>().c_str(), kv[1].get<std::string>().c_str(), 1);
  }
  EXPECT_NE(usage_error([] { world_from_env(); }).find("elastic"), std::string::npos);
  EXPECT_NE(usage_error([] { node_from_env(2, false); }).find("elastic"), std::string::npos);
}

// nprocPerNode 4 on 2 pods: WORLD_SIZE 8, RANK = the pod index.
void pod_with_four_ranks(const char* pod_index) {
  setenv("WORLD_SIZE", "8", 1);
  setenv("RANK", pod_index, 1);
  setenv("PET_NODE_RANK", pod_index, 1);
  setenv("PET_NNODES", "2", 1);
  setenv("PET_NPROC_PER_NODE", "4", 1);
  setenv("MASTER_ADDR", "job-master-0", 1);
  setenv("PET_MASTER_ADDR", "job-master-0", 1);
  setenv("MASTER_PORT", "23456", 1);
  setenv("PET_MASTER_PORT", "23456", 1);
}

TEST_F(WorldEnv, SeveralRanksPerPodNeedTheLauncher) {
  pod_with_four_ranks("1");
  EXPECT_NE(usage_error([] { world_from_env(); }).find("ddpipe launch"), std::string::npos);

  // `ddpipe launch` in that pod: node rank = the pod's RANK, 4 local ranks.
  auto node = node_from_env(2, false);
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->nnodes, 2);
  EXPECT_EQ(node->node_rank, 1);
  EXPECT_EQ(node->nproc, 4);
  EXPECT_EQ(node->master_addr, "job-master-0");
  EXPECT_EQ(node->master_port, 23456);
  EXPECT_EQ(node->contract, "pytorchjob");
  EXPECT_NE(usage_error([] { node_from_env(3, true); }).find("PET_NPROC_PER_NODE=4"),
            std::string::npos);
  EXPECT_EQ(node_from_env(4, true)->nproc, 4);

  // What the launcher then gives local rank 2 of that node: global rank 1 * 4 + 2.
  setenv("RANK", "6", 1);
  setenv("LOCAL_RANK", "2", 1);
  setenv("LOCAL_WORLD_SIZE", "4", 1);
  WorldInfo w = world_from_env();
  EXPECT_EQ(w.rank, 6);
  EXPECT_EQ(w.local_rank, 2);
  EXPECT_EQ(w.world_size, 8);
  EXPECT_EQ(w.contract, "torchrun");
  setenv("LOCAL_WORLD_SIZE", "3", 1);
  EXPECT_NE(usage_error([] { world_from_env(); }).find("PET_NPROC_PER_NODE"), std::string::npos);
}

TEST_F(WorldEnv, AutoProcessesPerPodLeaveTheCountToTheConfig) {
  pod_with_four_ranks("0");
  setenv("PET_NPROC_PER_NODE", "auto", 1);
  setenv("WORLD_SIZE", "2", 1);  // pods × 1 under auto
  auto node = node_from_env(3, true);
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->nproc, 3);
  EXPECT_EQ(node->node_rank, 0);
  EXPECT_EQ(world_from_env().rank, 0);  // one `ddpipe train` per pod is fine too
}

TEST_F(WorldEnv, InconsistentPodEnvironmentIsRefused) {
  pod_with_four_ranks("1");
  setenv("PET_NPROC_PER_NODE", "1", 1);
  EXPECT_NE(usage_error([] { world_from_env(); }).find("WORLD_SIZE=8"), std::string::npos);
  setenv("WORLD_SIZE", "2", 1);
  setenv("PET_NODE_RANK", "0", 1);
  EXPECT_NE(usage_error([] { world_from_env(); }).find("PET_NODE_RANK=0"), std::string::npos);
  setenv("PET_NODE_RANK", "1", 1);
  setenv("PET_MASTER_ADDR", "other-master-0", 1);
  EXPECT_NE(usage_error([] { world_from_env(); }).find("PET_MASTER_ADDR=other-master-0"),
            std::string::npos);
  setenv("PET_NPROC_PER_NODE", "4", 1);
  setenv("WORLD_SIZE", "6", 1);
  EXPECT_NE(usage_error([] { node_from_env(4, false); }).find("WORLD_SIZE=6"), std::string::npos);
}

TEST_F(WorldEnv, TrainerV2TorchrunArguments) {
  setenv("PET_NNODES", "3", 1);
  setenv("PET_NPROC_PER_NODE", "1", 1);
  setenv("PET_NODE_RANK", "2", 1);
  setenv("PET_MASTER_ADDR", "train-node-0-0.train", 1);
  setenv("PET_MASTER_PORT", "29400", 1);
  WorldInfo w = world_from_env();
  EXPECT_EQ(w.contract, "trainer-v2");
  EXPECT_EQ(w.world_size, 3);
  EXPECT_EQ(w.rank, 2);
  EXPECT_EQ(w.master_addr, "train-node-0-0.train");
  EXPECT_EQ(w.master_port, 29400);
  auto node = node_from_env(2, false);
  EXPECT_EQ(node->contract, "trainer-v2");
  EXPECT_EQ(node->nproc, 1);
  unsetenv("PET_MASTER_ADDR");
  EXPECT_NE(usage_error([] { world_from_env(); }).find("PET_MASTER_ADDR"), std::string::npos);
  unsetenv("PET_NNODES");
  EXPECT_FALSE(node_from_env(2, false).has_value());  // not in a pod: the config decides
}

// The env the torch plugin of Kubeflow Trainer v2.3.0 gives each node (derived from
// ../shared/testdata/k8s/PROVENANCE.md; the derivation is in the file, which lives in the tree).
nlohmann::json golden_trainer_v2_pods() {
  return nlohmann::json::parse(core::read_file(
      std::string(DDPIPE_SOURCE_DIR) + "/tests/k8s/testdata/trainjob_v2.3.0_expected_env.json"));
}

TEST_F(WorldEnv, EveryNodeOfATrainJobKnowsItsPlace) {
  int checked = 0;
  const nlohmann::json golden = golden_trainer_v2_pods();
  for (const auto& c : golden["cases"]) {
    const int64_t world = c["world_size"];
    for (const auto& [pod, expected] : c["pods"].items()) {
      SetUp();
      std::map<std::string, std::string> env;
      for (const auto& kv : expected["env"]) {
        env[kv[0]] = kv[1];
        setenv(kv[0].get<std::string>().c_str(), kv[1].get<std::string>().c_str(), 1);
      }
      const int64_t nodes = std::stoll(env["PET_NNODES"]);
      const int64_t per_node = std::stoll(env["PET_NPROC_PER_NODE"]);
      auto node = node_from_env(2, false);
      ASSERT_TRUE(node.has_value()) << pod;
      EXPECT_EQ(node->contract, "trainer-v2");
      EXPECT_EQ(node->nnodes, nodes);
      EXPECT_EQ(node->node_rank, std::stoll(env["PET_NODE_RANK"])) << pod;
      EXPECT_EQ(node->nproc, per_node);
      EXPECT_EQ(node->nnodes * node->nproc, world);
      EXPECT_EQ(node->master_addr,
                c["job_name"].get<std::string>() + "-node-0-0." + c["job_name"].get<std::string>());
      EXPECT_EQ(node->master_port, 29500);
      if (per_node == 1) {  // `ddpipe train` as the container's command: one rank per node
        WorldInfo w = world_from_env();
        EXPECT_EQ(w.contract, "trainer-v2");
        EXPECT_EQ(w.rank, node->node_rank);
        EXPECT_EQ(w.world_size, world);
        EXPECT_EQ(w.master_addr, node->master_addr);
      } else {  // several ranks per node need `ddpipe launch`
        EXPECT_NE(usage_error([] { world_from_env(); }).find("ddpipe launch"), std::string::npos);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5);
}

// PET_NPROC_PER_NODE=auto in a Trainer v2 pod: the node's CPUs unless the user chose a count.
TEST_F(WorldEnv, AutoInATrainerV2PodIsTheNodesCpus) {
  setenv("PET_NNODES", "2", 1);
  setenv("PET_NODE_RANK", "1", 1);
  setenv("PET_NPROC_PER_NODE", "auto", 1);
  setenv("PET_MASTER_ADDR", "j-node-0-0.j", 1);
  setenv("PET_MASTER_PORT", "29500", 1);
  const int64_t cpus = available_cpus();
  EXPECT_GE(cpus, 1);
  EXPECT_EQ(node_from_env(7, false)->nproc, cpus);
  EXPECT_EQ(node_from_env(3, true)->nproc, 3);
  setenv("PET_NPROC_PER_NODE", "0", 1);
  EXPECT_NE(usage_error([] { node_from_env(1, false); }).find("PET_NPROC_PER_NODE"),
            std::string::npos);
}

}  // namespace
}  // namespace ddpipe::dist
