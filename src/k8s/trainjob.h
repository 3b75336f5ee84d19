// ddpipe::k8s — a Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org/v1alpha1, Trainer v2.3.0)
// as its controller and torch plugin run it: which pods it creates and the environment each gets.
//
// The rules (summarised from pkg/runtime/framework/plugins/torch/torch.go, v2.3.0, in
// ../shared/testdata/k8s/PROVENANCE.md): the TrainJob references a TrainingRuntime (same
// namespace) or ClusterTrainingRuntime by spec.runtimeRef (kind defaults to
// ClusterTrainingRuntime); the runtime's JobSet template has a replicated Job `node` whose
// container `node` runs the trainer, with the TrainJob's spec.trainer image, command and args
// replacing the runtime's, its env merged over the container's (by name) and resourcesPerNode
// as the container's resources. numNodes = spec.trainer.numNodes, else mlPolicy.numNodes, else
// 1; the node Job is Indexed, its pods have the hostnames <job>-node-0-<i> in the JobSet's
// headless Service <job>. The plugin then sets, in this order, PET_NNODES (numNodes),
// PET_NPROC_PER_NODE (spec.trainer.numProcPerNode, else "auto", which for CPU-only
// resourcesPerNode becomes their CPU count, rounded up, at least 1: trainer_auto_nproc),
// PET_NODE_RANK (the completion index i), PET_MASTER_ADDR (<job>-node-0-0.<job>) and
// PET_MASTER_PORT (29500).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "k8s/job_plan.h"

namespace ddpipe::k8s {

inline constexpr const char* kTrainerApiGroup = "trainer.kubeflow.org";
inline constexpr const char* kTrainerApiVersion = "trainer.kubeflow.org/v1alpha1";
// The label of the runtime's replicated Job that the Trainer sizes to numNodes, and its value.
inline constexpr const char* kTrainerAncestorLabel = "trainer.kubeflow.org/trainjob-ancestor-step";
inline constexpr const char* kTrainerAncestorStep = "trainer";
inline constexpr const char* kTrainerV2Job = "node";        // the trainer's replicated Job
inline constexpr const char* kTrainerV2Container = "node";  // the container the plugin configures
inline constexpr int64_t kTrainerV2MasterPort = 29500;      // PET_MASTER_PORT
inline constexpr const char* kStockTorchRuntime = "torch-distributed";

// The stock `torch-distributed` ClusterTrainingRuntime of Trainer v2.3.0
// (manifests/base/runtimes/torch_distributed.yaml), used when a TrainJob references it and the
// file does not hold it.
Object stock_torch_runtime();

// PET_NPROC_PER_NODE when spec.trainer (`trainer`) gives no numProcPerNode ("auto"): without
// resourcesPerNode "auto"; else from its limits, or its requests when the limits are absent or
// name a GPU resource: "auto" for a list naming a GPU resource, 1 for a missing list, else the
// list's cpu rounded up (0 when absent), at least 1 — the plugin's calculateNumProcPerNode.
std::string trainer_auto_nproc(const Object& trainer);

// The pods of the one TrainJob in `objects` with its runtime from `objects` (or the stock
// torch-distributed). Throws core::Error(kUsage) naming `origin` for no or several TrainJobs, a
// runtime that is not there, a runtime without mlPolicy.torch or replicated Job `node` with a
// container `node`, other replicated Jobs (initializers), elastic policies, numNodes < 1.
JobPlan plan_trainjob(const std::vector<Object>& objects, const std::string& origin);

}  // namespace ddpipe::k8s
