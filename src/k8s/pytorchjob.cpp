#include "k8s/pytorchjob.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "core/strings.h"

namespace ddpipe::k8s {
namespace {

constexpr int64_t kDefaultPort = 23456;

int64_t replicas_of(const Object& spec) {
  const Object& r = spec.contains("replicas") ? spec["replicas"] : Object(1);
  if (!r.is_number_integer() || r.get<int64_t>() < 0) {
    core::fail_usage("PyTorchJob: replicas must be a non-negative integer, got " + r.dump());
  }
  return r.get<int64_t>();
}

Object pytorch_container(const Object& pod_spec, const std::string& where) {
  if (!pod_spec.contains("containers")) {
    core::fail_usage("PyTorchJob " + where + ": the pod template has no containers");
  }
  for (const auto& c : pod_spec["containers"]) {
    if (c.value("name", "") == "pytorch") return c;
  }
  core::fail_usage("PyTorchJob " + where +
                   ": no container named 'pytorch' (the operator "
                   "configures only that one)");
}

// The Master's container port named pytorchjob-port, else the default.
int64_t master_port(const Object& master_pod_spec, const std::string& job) {
  const Object c = pytorch_container(master_pod_spec, job + " Master");
  for (const auto& p : c.value("ports", Object::array())) {
    if (p.value("name", "") == "pytorchjob-port") return p.value("containerPort", kDefaultPort);
  }
  return kDefaultPort;
}

}  // namespace

const Object& find_pytorchjob(const std::vector<Object>& objects, const std::string& origin) {
  const Object* found = nullptr;
  for (const auto& o : objects) {
    if (o.value("kind", "") != "PyTorchJob") continue;
    if (found) core::fail_usage(origin + ": holds more than one PyTorchJob; give one per file");
    found = &o;
  }
  if (!found) core::fail_usage(origin + ": holds no PyTorchJob (kind: PyTorchJob)");
  return *found;
}

JobPlan plan_pytorchjob(const Object& job) {
  if (job.value("apiVersion", "") != "kubeflow.org/v1" || job.value("kind", "") != "PyTorchJob") {
    core::fail_usage("expected apiVersion kubeflow.org/v1, kind PyTorchJob; got " +
                     job.value("apiVersion", "?") + " " + job.value("kind", "?"));
  }
  JobPlan plan;
  plan.kind = "PyTorchJob";
  plan.container = "pytorch";
  const Object& meta = job.value("metadata", Object::object());
  plan.name = meta.value("name", "");
  plan.namespace_name = meta.value("namespace", "");
  if (plan.name.empty()) core::fail_usage("PyTorchJob: metadata.name is missing");
  const Object& spec = job.value("spec", Object::object());
  if (spec.contains("elasticPolicy")) {
    core::fail_usage("PyTorchJob " + plan.name +
                     ": elasticPolicy (c10d rendezvous, a varying "
                     "number of nodes) is not supported by ddpipe; use one Master and a fixed "
                     "number of Workers");
  }
  const Object& replica_specs = spec.value("pytorchReplicaSpecs", Object::object());
  if (replica_specs.empty())
    core::fail_usage("PyTorchJob " + plan.name + ": no pytorchReplicaSpecs");
  for (auto it = replica_specs.begin(); it != replica_specs.end(); ++it) {
    if (it.key() != "Master" && it.key() != "Worker") {
      core::fail_usage("PyTorchJob " + plan.name + ": unknown replica type '" + it.key() +
                       "' (expected Master and Worker)");
    }
  }
  if (!replica_specs.contains("Master")) {
    core::fail_usage("PyTorchJob " + plan.name +
                     ": no Master replica; without one the operator "
                     "sets no MASTER_ADDR, WORLD_SIZE or RANK");
  }
  const Object& master = replica_specs["Master"];
  if (replicas_of(master) != 1) {
    core::fail_usage("PyTorchJob " + plan.name + ": the Master must have exactly 1 replica");
  }
  const int64_t workers =
      replica_specs.contains("Worker") ? replicas_of(replica_specs["Worker"]) : 0;
  const int64_t pods = 1 + workers;

  const std::string nproc = spec.value("nprocPerNode", "auto");
  const bool numeric = !nproc.empty() && std::all_of(nproc.begin(), nproc.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  plan.world_size = pods * (numeric ? std::stoll(nproc) : 1);
  plan.master_addr = plan.name + "-master-0";
  const Object& master_pod =
      master.value("template", Object::object()).value("spec", Object::object());
  plan.master_port = master_port(master_pod, plan.name);

  auto add = [&](const std::string& type, int64_t index, int64_t rank) {
    ReplicaPod p;
    p.replica_type = type;
    p.index = index;
    p.rank = rank;
    p.name = plan.name + "-" + core::to_lower(type) + "-" + std::to_string(index);
    p.pod_spec =
        replica_specs[type].value("template", Object::object()).value("spec", Object::object());
    pytorch_container(p.pod_spec, plan.name + " " + type);
    const std::string port = std::to_string(plan.master_port);
    p.operator_env = {{"PYTHONUNBUFFERED", "1"},
                      {"MASTER_PORT", port},
                      {"PET_MASTER_PORT", port},
                      {"MASTER_ADDR", plan.master_addr},
                      {"PET_MASTER_ADDR", plan.master_addr},
                      {"WORLD_SIZE", std::to_string(plan.world_size)},
                      {"RANK", std::to_string(rank)},
                      {"PET_NODE_RANK", std::to_string(rank)},
                      {"PET_NPROC_PER_NODE", nproc},
                      {"PET_NNODES", std::to_string(pods)}};
    plan.pods.push_back(std::move(p));
  };
  add("Master", 0, 0);
  for (int64_t i = 0; i < workers; ++i) add("Worker", i, i + 1);
  return plan;
}

}  // namespace ddpipe::k8s
