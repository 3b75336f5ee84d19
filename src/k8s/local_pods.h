// ddpipe::k8s — running the pods of a PyTorchJob or a TrainJob as local processes
// (`ddpipe launch --from-pytorchjob FILE`, `--from-trainjob FILE`), each with exactly the pod's
// command, args and env plus what the operator appends (pytorchjob.h, trainjob.h), so that a job
// can be tried before it goes to a cluster.
//
// How a process is made to look like its pod:
//  - Name resolution: MASTER_ADDR is the master pod's Service name (<job>-master-0) or, for a
//    TrainJob, PET_MASTER_ADDR is the first node's name in the JobSet's Service
//    (<job>-node-0-0.<job>), as given. Every pod runs in its own mount and UTS namespace, with
//    the pod name as hostname and a generated /etc/hosts (the machine's entries plus every pod
//    name of the job, also under its subdomain <job> for a TrainJob) bind-mounted
//    over /etc/hosts. Root is needed, or unprivileged user namespaces (then a user namespace
//    maps the caller's own uid and gid). The file's Services (e.g. `minio`) resolve to this
//    machine, so a MinIO running or port-forwarded here serves the pods' s3:// store.
//  - Network (PodNetwork): kHost: every pod name is 127.0.0.1. kBridge (root only): every replica
//    gets its own network namespace with an `eth0` veth on a bridge `ddpbr<pid>`, address
//    10.233.N.<i+2>/24 (the first /24 no local address uses; the bridge is .1 and the default
//    route, so host services are reachable there), so MASTER_ADDR really is another host and
//    Gloo traffic crosses the bridge. The namespaces vanish with their processes and the veths
//    with them; the bridge is deleted when the job ends. The plumbing is netns/netns.h.
//  - Files: a temporary folder per pod stands for its filesystem. ConfigMap and Secret volumes
//    (from the same file) are written there, emptyDir volumes and the image's HOME
//    (/home/ddpipe, also the working directory) are folders there, and every command, argument
//    and env value that is such a path, or starts with one followed by '/', is rewritten to it.
//  - Env: the image's PATH, HOSTNAME = the pod name, HOME, then the container's env (values,
//    $(VAR) references, Secret and ConfigMap keys from the same file, fieldRef metadata.name,
//    metadata.namespace, status.podIP, spec.serviceAccountName), envFrom, then the operator's
//    (a TrainJob's container is its runtime's `node` with spec.trainer applied: trainjob.h).
//    Nothing else of the caller's environment is passed on.
//  - Command: the image's ddpipe (kImageBinary, or no command: the image's entrypoint) is this
//    binary; any other command is looked up on the pod's PATH.
// The pods are a supervisor::Group (supervisor/supervisor.h), not restarted: when one fails the
// others are stopped (SIGTERM, then SIGKILL after grace_seconds), as `ddpipe launch` does. SIGINT
// or SIGTERM to the launcher (preemption) is passed on to every pod, which gets
// its terminationGracePeriodSeconds (Kubernetes' default, 30, when the spec has none) to stop,
// as a kubelet gives it (a rank checkpoints and exits 143), before SIGKILL. A pod that
// cannot be set up (namespaces, mounts, its command cannot be executed) exits with the system
// error code, 6, saying why on stderr.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "k8s/job_plan.h"
#include "k8s/manifest.h"

namespace ddpipe::k8s {

enum class PodNetwork { kHost, kBridge };

// One replica prepared for running: everything but the namespaces.
struct LocalPod {
  std::string name;
  int64_t rank = 0;
  std::string ip;
  std::vector<std::string> argv;  // argv[0] is a path or a name looked up on the PATH
  EnvList env;                    // one entry per name, in pod order
  std::filesystem::path root;     // the pod's folder
  std::filesystem::path workdir;
  std::vector<std::pair<std::filesystem::path, std::string>> files;  // volume files to write
  std::vector<std::filesystem::path> dirs;                           // folders to create
};

// The pods of the one job of `kind` in `objects` (plan_job), with their files under
// `root`/<pod name>, the ip of pod i being pod_ips[i]. Throws core::Error(kUsage) naming `origin`
// for what cannot run locally: a referenced Secret, ConfigMap or key missing from `objects`, a
// volume other than configMap, secret or emptyDir, an unsupported fieldRef or resourceFieldRef.
std::vector<LocalPod> local_pods(const std::vector<Object>& objects, const std::string& origin,
                                 const std::filesystem::path& root,
                                 const std::vector<std::string>& pod_ips,
                                 const std::string& ddpipe_binary,
                                 JobKind kind = JobKind::kPyTorchJob);

struct LocalJobOptions {
  JobKind kind = JobKind::kPyTorchJob;  // which job of the file runs
  PodNetwork network = PodNetwork::kHost;
  std::string ddpipe_binary;    // what runs for the image's ddpipe
  double grace_seconds = 10.0;  // a pod failed: the others' time between SIGTERM and SIGKILL
};

// Reads `manifest_file` (a YAML stream such as `ddpipe k8s render` prints), starts every pod
// of its job of `options.kind` and waits for all of them. Returns 0 when every pod exited 0, else
// the first non-zero exit code of a pod (128 + signal for a killed one; after SIGINT/SIGTERM to
// the launcher, the pods' code: 143 when they stopped cleanly). Throws core::Error(kUsage) when
// the job cannot run here (see local_pods, kBridge without root), core::Error(kSystem) when the
// OS refuses (fork, pipes, the bridge or a veth).
int run_job_locally(const std::string& manifest_file, const LocalJobOptions& options);

}  // namespace ddpipe::k8s
