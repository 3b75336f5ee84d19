// ddpipe::k8s — the pods a Kubeflow training job becomes and the environment its operator gives
// each, whichever operator: the PyTorchJob of the training operator v1.8 (pytorchjob.h) or the
// TrainJob of Kubeflow Trainer v2.3 (trainjob.h). `ddpipe launch --from-pytorchjob` /
// `--from-trainjob` (local_pods.h) run a plan's pods as local processes.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "k8s/manifest.h"

namespace ddpipe::k8s {

using EnvList = std::vector<std::pair<std::string, std::string>>;

enum class JobKind { kPyTorchJob, kTrainJob };

struct ReplicaPod {
  std::string name;          // v1: <job>-master-0, <job>-worker-<i>; v2: <job>-node-0-<i>
  std::string replica_type;  // v1: "Master" or "Worker"; v2: "node" (the replicated Job)
  int64_t index = 0;         // within the replica type
  int64_t rank = 0;          // the pod's index in the job (RANK / PET_NODE_RANK)
  Object pod_spec;           // the spec the pod gets (v2: the runtime's with spec.trainer)
  EnvList operator_env;      // what the operator appends to the container's env, in order
};

struct JobPlan {
  std::string kind;  // "PyTorchJob" or "TrainJob"
  std::string name;
  std::string namespace_name;  // "" when the manifest gives none
  std::string container;       // the container the operator configures: "pytorch" or "node"
  // "" (v1: every pod has a Service of its own name) or the headless Service whose subdomain
  // the pods' hostnames live in (v2: <pod>.<job>, as PET_MASTER_ADDR names the first node).
  std::string subdomain;
  std::string master_addr;
  int64_t master_port = 0;
  int64_t world_size = 0;        // as the operator computes it
  std::vector<ReplicaPod> pods;  // rank order
};

// The plan of the one job of `kind` in `objects` (plan_pytorchjob or plan_trainjob). Throws
// core::Error(kUsage) naming `origin` when the file holds none, several, or one that cannot run.
JobPlan plan_job(const std::vector<Object>& objects, const std::string& origin, JobKind kind);

}  // namespace ddpipe::k8s
