#include "k8s/trainjob.h"

#include <cmath>
#include <regex>

#include "core/error.h"
#include "core/strings.h"

namespace ddpipe::k8s {
namespace {

// manifests/base/runtimes/torch_distributed.yaml of Trainer v2.3.0 without its licence header;
// tests/k8s compare it with the upstream file in ../shared.
constexpr const char* kStockTorchRuntimeYaml = R"(
apiVersion: trainer.kubeflow.org/v1alpha1
kind: ClusterTrainingRuntime
metadata:
  name: torch-distributed
  labels:
    trainer.kubeflow.org/framework: torch
spec:
  mlPolicy:
    numNodes: 1
    torch: {}
  template:
    spec:
      replicatedJobs:
        - name: node
          template:
            metadata:
              labels:
                trainer.kubeflow.org/trainjob-ancestor-step: trainer
            spec:
              template:
                spec:
                  containers:
                    - name: node
                      image: pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime
)";

std::string name_of(const Object& o) {
  return o.value("metadata", Object::object()).value("name", "");
}

const Object& the_trainjob(const std::vector<Object>& objects, const std::string& origin) {
  const Object* found = nullptr;
  for (const auto& o : objects) {
    if (o.value("kind", "") != "TrainJob") continue;
    if (found) core::fail_usage(origin + ": holds more than one TrainJob; give one per file");
    found = &o;
  }
  if (!found) core::fail_usage(origin + ": holds no TrainJob (kind: TrainJob)");
  if (found->value("apiVersion", "") != kTrainerApiVersion) {
    core::fail_usage(origin + ": TrainJob " + name_of(*found) + ": expected apiVersion " +
                     kTrainerApiVersion + " (Kubeflow Trainer v2), got " +
                     found->value("apiVersion", "?"));
  }
  return *found;
}

// The runtime spec.runtimeRef names: from the file, else the stock torch-distributed.
Object runtime_of(const Object& job, const std::vector<Object>& objects, const std::string& where) {
  const Object ref = job.value("spec", Object::object()).value("runtimeRef", Object::object());
  const std::string name = ref.value("name", "");
  const std::string kind = ref.value("kind", "ClusterTrainingRuntime");
  if (name.empty()) core::fail_usage(where + ": spec.runtimeRef.name is missing");
  if (ref.value("apiGroup", kTrainerApiGroup) != kTrainerApiGroup ||
      (kind != "TrainingRuntime" && kind != "ClusterTrainingRuntime")) {
    core::fail_usage(where + ": spec.runtimeRef: expected a TrainingRuntime or " +
                     "ClusterTrainingRuntime of trainer.kubeflow.org, got " + ref.dump());
  }
  for (const auto& o : objects) {
    if (o.value("kind", "") == kind && name_of(o) == name) return o;
  }
  if (kind == "ClusterTrainingRuntime" && name == kStockTorchRuntime) return stock_torch_runtime();
  core::fail_usage(where + ": spec.runtimeRef names " + kind + " '" + name +
                   "', which is not in the file (render it into the same stream; without it "
                   "only the stock ClusterTrainingRuntime torch-distributed is known)");
}

// A CPU quantity ("2", "500m", "1.5") in cores.
double cpu_cores(const Object& q, const std::string& where) {
  const std::string s = q.is_string() ? q.get<std::string>() : q.dump();
  static const std::regex kQuantity("([0-9]+(\\.[0-9]*)?)(m?)");
  std::smatch m;
  if (!std::regex_match(s, m, kQuantity)) {
    core::fail_usage(where + ": cpu quantity '" + s + "': expected cores such as 2, 1.5 or 500m");
  }
  return std::stod(m[1].str()) / (m[3].length() ? 1000.0 : 1.0);
}

// The runtime's container `node` with the TrainJob's spec.trainer applied.
Object trainer_container(const Object& pod_spec, const Object& trainer, const std::string& where) {
  Object container;
  for (const auto& c : pod_spec.value("containers", Object::array())) {
    if (c.value("name", "") == kTrainerV2Container) container = c;
  }
  if (container.is_null()) {
    core::fail_usage(where + ": the runtime's pod has no container named 'node' (the torch " +
                     "plugin configures only that one)");
  }
  for (const char* key : {"image", "command", "args"}) {
    if (trainer.contains(key)) container[key] = trainer[key];
  }
  if (trainer.contains("resourcesPerNode")) container["resources"] = trainer["resourcesPerNode"];
  Object env = container.value("env", Object::array());
  for (const auto& e : trainer.value("env", Object::array())) {
    bool replaced = false;
    for (auto& mine : env) {
      if (mine.value("name", "") == e.value("name", "")) {
        mine = e;
        replaced = true;
      }
    }
    if (!replaced) env.push_back(e);
  }
  if (!env.empty()) container["env"] = env;
  return container;
}

// The runtime's replicated Job `node`, the only one ddpipe runs.
Object node_job(const Object& runtime, const std::string& where) {
  const Object& spec = runtime.value("spec", Object::object());
  const Object& ml = spec.value("mlPolicy", Object::object());
  if (!ml.contains("torch")) {
    core::fail_usage(where + ": the runtime " + name_of(runtime) +
                     " has no mlPolicy.torch (ddpipe runs torch runtimes only)");
  }
  if (ml["torch"].contains("elasticPolicy")) {
    core::fail_usage(where + ": mlPolicy.torch.elasticPolicy (a varying number of nodes) is " +
                     "not supported by ddpipe; use a fixed numNodes");
  }
  const Object* found = nullptr;
  const Object& jobs = spec.value("template", Object::object())
                           .value("spec", Object::object())
                           .value("replicatedJobs", Object::array());
  for (const auto& rj : jobs) {
    if (rj.value("name", "") != kTrainerV2Job) {
      core::fail_usage(where + ": the runtime's replicated Job '" + rj.value("name", "") +
                       "' (an initializer?) cannot run locally: only 'node' is supported");
    }
    found = &rj;
  }
  if (!found) core::fail_usage(where + ": the runtime has no replicated Job 'node'");
  return *found;
}

}  // namespace

Object stock_torch_runtime() {
  return parse_manifests(kStockTorchRuntimeYaml, "the stock torch-distributed runtime")[0];
}

std::string trainer_auto_nproc(const Object& trainer) {
  if (!trainer.contains("resourcesPerNode")) return "auto";
  const Object& res = trainer["resourcesPerNode"];
  // The plugin's calculateNumProcPerNode: limits first, then requests; a list naming a GPU
  // resource keeps "auto", a missing list counts 1, otherwise its cpu (0 when absent), at least 1.
  auto count = [&](const char* part, bool& used) -> std::string {
    used = false;
    if (!res.contains(part)) return "1";
    const Object& list = res[part];
    for (auto it = list.begin(); it != list.end(); ++it) {
      if (core::to_lower(it.key()).find("gpu") != std::string::npos) return "auto";
    }
    used = true;
    const double cores =
        list.contains("cpu") ? cpu_cores(list["cpu"], "resourcesPerNode." + std::string(part)) : 0;
    return std::to_string(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(cores))));
  };
  bool used = false;
  const std::string from_limits = count("limits", used);
  return used ? from_limits : count("requests", used);
}

JobPlan plan_trainjob(const std::vector<Object>& objects, const std::string& origin) {
  const Object& job = the_trainjob(objects, origin);
  JobPlan plan;
  plan.kind = "TrainJob";
  plan.container = kTrainerV2Container;
  plan.name = name_of(job);
  plan.namespace_name = job.value("metadata", Object::object()).value("namespace", "");
  if (plan.name.empty()) core::fail_usage(origin + ": TrainJob: metadata.name is missing");
  const std::string where = origin + ": TrainJob " + plan.name;
  const Object& spec = job.value("spec", Object::object());
  const Object trainer = spec.value("trainer", Object::object());
  const Object runtime = runtime_of(job, objects, where);
  const Object rj = node_job(runtime, where);
  const Object pod_template = rj.value("template", Object::object())
                                  .value("spec", Object::object())
                                  .value("template", Object::object());
  Object pod_spec = pod_template.value("spec", Object::object());
  const Object container = trainer_container(pod_spec, trainer, where);
  for (auto& c : pod_spec["containers"]) {
    if (c.value("name", "") == kTrainerV2Container) c = container;
  }

  const Object ml = runtime.value("spec", Object::object()).value("mlPolicy", Object::object());
  const Object nodes = trainer.value("numNodes", ml.value("numNodes", Object(1)));
  if (!nodes.is_number_integer() || nodes.get<int64_t>() < 1) {
    core::fail_usage(where + ": spec.trainer.numNodes: expected an integer of at least 1, got " +
                     nodes.dump());
  }
  const int64_t nnodes = nodes.get<int64_t>();
  std::string nproc = trainer_auto_nproc(trainer);
  if (trainer.contains("numProcPerNode")) {
    const Object& k = trainer["numProcPerNode"];
    if (!k.is_number_integer() || k.get<int64_t>() < 1) {
      core::fail_usage(where + ": spec.trainer.numProcPerNode: expected an integer of at " +
                       "least 1, got " + k.dump());
    }
    nproc = std::to_string(k.get<int64_t>());
  }
  plan.world_size = nnodes * (nproc == "auto" ? 1 : std::stoll(nproc));
  plan.subdomain = plan.name;
  plan.master_addr = plan.name + "-" + kTrainerV2Job + "-0-0." + plan.subdomain;
  plan.master_port = kTrainerV2MasterPort;
  for (int64_t i = 0; i < nnodes; ++i) {
    ReplicaPod p;
    p.replica_type = kTrainerV2Job;
    p.index = i;
    p.rank = i;
    p.name = plan.name + "-" + kTrainerV2Job + "-0-" + std::to_string(i);
    p.pod_spec = pod_spec;
    p.operator_env = {{"PET_NNODES", std::to_string(nnodes)},
                      {"PET_NPROC_PER_NODE", nproc},
                      {"PET_NODE_RANK", std::to_string(i)},
                      {"PET_MASTER_ADDR", plan.master_addr},
                      {"PET_MASTER_PORT", std::to_string(plan.master_port)}};
    plan.pods.push_back(std::move(p));
  }
  return plan;
}

}  // namespace ddpipe::k8s
