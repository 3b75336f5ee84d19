#include "dist/world.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/log.h"

namespace ddpipe::dist {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

bool env_int(const char* name, int64_t& out) {
  const char* v = env(name);
  if (!v) return false;
  char* end = nullptr;
  long long x = std::strtoll(v, &end, 10);
  if (*end != '\0' || x < 0) {
    core::fail_usage(std::string("environment variable ") + name +
                     ": expected a non-negative integer, got '" + v + "'");
  }
  out = x;
  return true;
}

std::string n(int64_t v) { return std::to_string(v); }

// PET_NNODES: a number of nodes; "min:max" is an elastic job, which ddpipe does not run.
int64_t pet_nnodes() {
  const std::string v = env("PET_NNODES");
  if (v.find(':') != std::string::npos) {
    core::fail_usage("PET_NNODES=" + v +
                     " describes an elastic job (elasticPolicy, c10d "
                     "rendezvous), which ddpipe does not support: use a PyTorchJob with one "
                     "Master and a fixed number of Workers (`ddpipe k8s render` writes one)");
  }
  int64_t nodes = 0;
  env_int("PET_NNODES", nodes);
  if (nodes < 1) core::fail_usage("environment variable PET_NNODES: must be at least 1");
  return nodes;
}

// PET_NPROC_PER_NODE as a number, or 0 for auto, cpu, gpu or unset (one rank per node unless a
// launcher decides otherwise).
int64_t pet_nproc_per_node() {
  const char* v = env("PET_NPROC_PER_NODE");
  if (!v || std::string(v) == "auto" || std::string(v) == "cpu" || std::string(v) == "gpu") {
    return 0;
  }
  int64_t k = 0;
  env_int("PET_NPROC_PER_NODE", k);
  if (k < 1) core::fail_usage("environment variable PET_NPROC_PER_NODE: must be at least 1");
  return k;
}

// MASTER_X, else PET_MASTER_X; both set must agree.
const char* master_var(const char* plain, const char* pet) {
  const char* a = env(plain);
  const char* b = env(pet);
  if (a && b && std::string(a) != b) {
    core::fail_usage(std::string(plain) + "=" + a + " disagrees with " + pet + "=" + b +
                     ": they must name the same master");
  }
  return a ? a : b;
}

void read_master(std::string& addr, int64_t& port, const std::string& why) {
  const char* a = master_var("MASTER_ADDR", "PET_MASTER_ADDR");
  if (!a) core::fail_usage(why + " but MASTER_ADDR (or PET_MASTER_ADDR) is not set");
  addr = a;
  const char* p = master_var("MASTER_PORT", "PET_MASTER_PORT");
  if (!p) core::fail_usage(why + " but MASTER_PORT (or PET_MASTER_PORT) is not set");
  env_int(env("MASTER_PORT") ? "MASTER_PORT" : "PET_MASTER_PORT", port);
  if (port < 1 || port > 65535) {
    core::fail_usage("MASTER_PORT must be between 1 and 65535, got " + n(port));
  }
}

[[noreturn]] void fail_one_process(int64_t nproc) {
  core::fail_usage(
      "PET_NPROC_PER_NODE=" + n(nproc) + ": this pod is meant to run " + n(nproc) +
      " ranks, but `ddpipe train` is one process; run `ddpipe launch` as the "
      "container's command (it starts the pod's ranks) or set the job's processes per node "
      "to 1 (PyTorchJob spec.nprocPerNode, TrainJob spec.trainer.numProcPerNode)");
}

// The pod's node rank: PET_NODE_RANK, or RANK (the pod index) under v1; both set must agree.
int64_t pod_node_rank(int64_t nnodes) {
  int64_t node = -1, rank = -1;
  env_int("PET_NODE_RANK", node);
  env_int("RANK", rank);
  if (node >= 0 && rank >= 0 && node != rank) {
    core::fail_usage("RANK=" + n(rank) +
                     " (the pod index) disagrees with PET_NODE_RANK=" + n(node));
  }
  if (node < 0) node = rank;
  if (node < 0) {
    if (nnodes > 1) core::fail_usage("PET_NNODES=" + n(nnodes) + " but PET_NODE_RANK is not set");
    node = 0;
  }
  if (node >= nnodes) {
    core::fail_usage("PET_NODE_RANK=" + n(node) + " is not below PET_NNODES=" + n(nnodes));
  }
  return node;
}

}  // namespace

WorldInfo world_from_env() {
  WorldInfo w;
  const bool in_pod = env("PET_NNODES") != nullptr;
  if (!env_int("WORLD_SIZE", w.world_size)) {
    if (in_pod) {
      // Trainer v2: the torchrun arguments only; one process per pod.
      w.contract = "trainer-v2";
      const int64_t nnodes = pet_nnodes();
      const int64_t nproc = pet_nproc_per_node();
      if (nproc > 1) fail_one_process(nproc);
      w.world_size = nnodes;
      w.rank = pod_node_rank(nnodes);
    }
  } else {
    if (w.world_size < 1) core::fail_usage("environment variable WORLD_SIZE: must be at least 1");
    env_int("RANK", w.rank);
    if (env("LOCAL_RANK")) {
      // Started by a launcher (ddpipe launch, torchrun), possibly inside a pod.
      w.contract = "torchrun";
      env_int("LOCAL_RANK", w.local_rank);
      const bool local_size_set = env_int("LOCAL_WORLD_SIZE", w.local_world_size);
      if (!local_size_set) w.local_world_size = w.world_size;
      if (in_pod && local_size_set) {
        const int64_t nnodes = pet_nnodes();
        const int64_t nproc = pet_nproc_per_node();
        if (nproc > 0 && nproc != w.local_world_size) {
          core::fail_usage("LOCAL_WORLD_SIZE=" + n(w.local_world_size) +
                           " disagrees with PET_NPROC_PER_NODE=" + n(nproc));
        }
        if (w.world_size != nnodes * w.local_world_size) {
          core::fail_usage("WORLD_SIZE=" + n(w.world_size) + " is not PET_NNODES=" + n(nnodes) +
                           " × LOCAL_WORLD_SIZE=" + n(w.local_world_size));
        }
      }
    } else if (in_pod) {
      // PyTorchJob v1: this pod is one rank; RANK is the pod index.
      w.contract = "pytorchjob";
      const int64_t nnodes = pet_nnodes();
      const int64_t nproc = pet_nproc_per_node();
      if (nproc > 1) fail_one_process(nproc);
      if (w.world_size != nnodes) {
        core::fail_usage("WORLD_SIZE=" + n(w.world_size) + " but PET_NNODES=" + n(nnodes) +
                         " pods of one rank each: the job's replicas and nprocPerNode disagree");
      }
      w.rank = pod_node_rank(nnodes);
    } else {
      // Plain torchrun-style variables: ranks of one machine unless LOCAL_RANK says otherwise.
      w.contract = "torchrun";
      w.local_rank = w.rank;
      if (!env_int("LOCAL_WORLD_SIZE", w.local_world_size)) w.local_world_size = w.world_size;
    }
  }
  if (w.rank >= w.world_size) {
    core::fail_usage("RANK=" + n(w.rank) + " is not below WORLD_SIZE=" + n(w.world_size));
  }
  if (w.local_rank >= w.local_world_size) {
    core::fail_usage("LOCAL_RANK=" + n(w.local_rank) +
                     " is not below LOCAL_WORLD_SIZE=" + n(w.local_world_size));
  }
  if (w.world_size > 1) read_master(w.master_addr, w.master_port, "WORLD_SIZE > 1");
  core::log::info("dist", "rank contract",
                  {{"rank", w.rank},
                   {"local_rank", w.local_rank},
                   {"world_size", w.world_size},
                   {"local_world_size", w.local_world_size},
                   {"contract", w.contract},
                   {"master", w.world_size > 1 ? w.master_addr + ":" + n(w.master_port) : ""}});
  return w;
}

std::optional<NodePlan> node_from_env(int64_t nproc, bool nproc_given) {
  if (!env("PET_NNODES")) return std::nullopt;
  NodePlan p;
  p.contract = env("WORLD_SIZE") ? "pytorchjob" : "trainer-v2";
  p.nnodes = pet_nnodes();
  const int64_t pet = pet_nproc_per_node();
  if (pet > 0 && nproc_given && nproc != pet) {
    core::fail_usage("--nproc-per-node " + n(nproc) +
                     " (dist.nproc) disagrees with "
                     "PET_NPROC_PER_NODE=" +
                     n(pet) +
                     " (the job's nprocPerNode): drop the "
                     "option or make them equal");
  }
  if (pet > 0) {
    p.nproc = pet;
  } else {
    // "auto": the user's choice, else v1: the config's; v2: this node's CPUs (as the plugin).
    p.nproc = nproc_given || p.contract == "pytorchjob" ? nproc : available_cpus();
  }
  p.node_rank = pod_node_rank(p.nnodes);
  int64_t world = 0;
  if (pet > 0 && env_int("WORLD_SIZE", world) && world != p.nnodes * p.nproc) {
    core::fail_usage("WORLD_SIZE=" + n(world) + " is not PET_NNODES=" + n(p.nnodes) +
                     " × PET_NPROC_PER_NODE=" + n(p.nproc));
  }
  if (p.nnodes * p.nproc > 1) {
    read_master(p.master_addr, p.master_port, "a job of " + n(p.nnodes * p.nproc) + " ranks");
  }
  return p;
}

int64_t available_cpus() {
  int64_t cpus = 1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  std::ifstream cpu_max("/sys/fs/cgroup/cpu.max");  // cgroup v2: "<quota|max> <period>"
  std::string quota;
  double period = 0;
  if (cpu_max >> quota >> period && quota != "max" && period > 0) {
    const int64_t limit = static_cast<int64_t>(std::ceil(std::stod(quota) / period));
    cpus = std::max<int64_t>(1, std::min(cpus, limit));
  }
  return cpus;
}

}  // namespace ddpipe::dist
