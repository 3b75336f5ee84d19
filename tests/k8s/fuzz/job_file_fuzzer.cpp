// libFuzzer target: the job files of `ddpipe launch --from-pytorchjob FILE` / `--from-trainjob
// FILE`, through k8s::parse_manifests (yaml-cpp), plan_job and local_pods (pods, env, volumes;
// nothing is started) for both kinds, and the YAML written back (k8s::to_yaml), which must read
// back. Every file and folder a pod would get must lie inside its pod folder. Built with clang
// under ASan + UBSan; see cmake/DdpipeFuzz.cmake.
//
// Expected refusals are core::Error; anything else escaping is a finding.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "k8s/job_plan.h"
#include "k8s/local_pods.h"
#include "k8s/manifest.h"

using namespace ddpipe;
namespace fs = std::filesystem;

namespace {

// Traps unless `path` is `root` or below it, lexically (what is written there stays in the pod).
void check_inside(const fs::path& root, const fs::path& path) {
  const fs::path p = path.lexically_normal();
  const fs::path rel = p.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..") __builtin_trap();
}

void plan(const std::vector<k8s::Object>& objects, k8s::JobKind kind) {
  try {
    const k8s::JobPlan job = k8s::plan_job(objects, "fuzz.yaml", kind);
    const std::vector<std::string> ips(job.pods.size(), "10.0.0.2");
    const fs::path root = "/nonexistent/pods";
    for (const k8s::LocalPod& pod :
         k8s::local_pods(objects, "fuzz.yaml", root, ips, "/bin/ddpipe", kind)) {
      check_inside(root, pod.root);
      for (const auto& [path, text] : pod.files) check_inside(pod.root, path);
      for (const fs::path& dir : pod.dirs) check_inside(pod.root, dir);
    }
  } catch (const core::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<k8s::Object> objects;
  try {
    objects =
        k8s::parse_manifests(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const core::Error&) {
    return 0;
  }
  plan(objects, k8s::JobKind::kPyTorchJob);
  plan(objects, k8s::JobKind::kTrainJob);
  try {  // what ddpipe writes, it must read
    k8s::parse_manifests(k8s::to_yaml(objects), "fuzz.yaml (written back)");
  } catch (const core::Error&) {
    __builtin_trap();
  }
  return 0;
}
