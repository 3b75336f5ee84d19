#include "k8s/job_plan.h"

#include "core/error.h"

#include "k8s/pytorchjob.h"
#include "k8s/trainjob.h"

namespace ddpipe::k8s {

JobPlan plan_job(const std::vector<Object>& objects, const std::string& origin, JobKind kind) {
  try {
    if (kind == JobKind::kTrainJob) return plan_trainjob(objects, origin);
    return plan_pytorchjob(find_pytorchjob(objects, origin));
  } catch (const nlohmann::json::exception& e) {
    core::fail_usage(origin + ": a field of the job has the wrong type (" + e.what() + ")");
  }
}

}  // namespace ddpipe::k8s
