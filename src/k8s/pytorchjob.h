// ddpipe::k8s — a Kubeflow PyTorchJob (kubeflow.org/v1) as the training operator v1.8 runs it:
// which pods it creates and the environment it gives each one.
//
// The operator's rules (pkg/controller.v1/pytorch, v1.8.1): pods <job>-master-0 and
// <job>-worker-<i>, each with a headless Service of the same name; after the container's own env
// it appends PYTHONUNBUFFERED=1, then with a Master replica MASTER_PORT and PET_MASTER_PORT (the
// Master's `pytorchjob-port`, default 23456), MASTER_ADDR and PET_MASTER_ADDR (<job>-master-0),
// WORLD_SIZE (all pods × nprocPerNode when that is a number, else × 1), RANK and PET_NODE_RANK
// (the pod index: master 0, worker i → i + 1), then PET_NPROC_PER_NODE (spec.nprocPerNode,
// default "auto") and PET_NNODES (the number of pods).
#pragma once

#include <string>
#include <vector>

#include "k8s/job_plan.h"

namespace ddpipe::k8s {

// The pods of `job`. Throws core::Error(kUsage) for what the operator would reject (no
// replica specs, a Master with replicas ≠ 1, no container named "pytorch") and for what ddpipe
// cannot run: jobs without a Master replica and elastic jobs (elasticPolicy).
JobPlan plan_pytorchjob(const Object& job);

// The one PyTorchJob in `objects`; throws core::Error(kUsage) naming `origin` when there is
// none or more than one.
const Object& find_pytorchjob(const std::vector<Object>& objects, const std::string& origin);

}  // namespace ddpipe::k8s
