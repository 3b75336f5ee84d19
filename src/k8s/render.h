// ddpipe::k8s — the Kubernetes manifests of a job, rendered from the same config as a local run
// (`ddpipe k8s render`), start here.
//
// One YAML stream holds everything a cluster with the Kubeflow training operator (v1.8) or
// Kubeflow Trainer (v2.3, RenderOptions::op) needs, in apply order, every object labelled
// app.kubernetes.io/component so it can be applied in phases (`kubectl apply -l
// app.kubernetes.io/component=storage`):
//   config   Namespace, ServiceAccount `ddpipe`, Secret `minio-credentials` (development
//            credentials), ConfigMap `<job>-config` (config.yaml)
//   storage  MinIO: PersistentVolumeClaim, Deployment, Service (API 9000, console 9001)
//   init     Job `<job>-init`: creates the store's bucket (`ddpipe store cp`, whose first write
//            creates it) and ingests the dataset (`ddpipe ingest`); both are idempotent
//   train    pytorchjob: PyTorchJob `<job>`: one Master and N Workers running `ddpipe train`,
//            restartPolicy ExitCode (ddpipe's 128+ codes are retried, 1–127 are not);
//            trainer-v2: TrainingRuntime `<job>-runtime` (the pod: volumes, security, exit-code
//            policy) and TrainJob `<job>` (image, command, env, resources, N+1 nodes) whose
//            JobSet fails at once on 1–127 (podFailurePolicy FailJob → failurePolicy
//            FailJobSet) and is recreated as a whole on 128+ (failurePolicy.maxRestarts);
//            both: DDPIPE_RUN_ID = the job name so restarted pods resume from the run's
//            checkpoints, terminationGracePeriodSeconds = ceil(core::preempt_stop_seconds)
//   serve    Deployment and Service `<job>-serve` on port 8080: `ddpipe serve`, probes on
//            /v2/health/ready and /v2/health/live; the server watches serve.version (an alias,
//            `latest` by default) and swaps in every newly promoted version without a rollout
// Credentials reach the pods only through secretKeyRef; the config in the ConfigMap holds no
// secret (s3 credentials and endpoint are cleared: the pods use the AWS_* environment).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "k8s/manifest.h"

namespace ddpipe::k8s {

// Facts of the ddpipe image (deploy/docker/Dockerfile); tests check that the two agree.
inline constexpr const char* kImageBinary = "/usr/bin/ddpipe";  // ENTRYPOINT (the package's)
inline constexpr const char* kImageHome = "/home/ddpipe";       // HOME and WORKDIR
inline constexpr int64_t kImageUid = 10001;                     // USER
inline constexpr const char* kImageDataset = "/usr/share/datasets/fashion-mnist";

inline constexpr const char* kConfigDir = "/etc/ddpipe";  // the ConfigMap's mount in every pod
inline constexpr int64_t kMasterPort = 23456;             // the operator's default MASTER_PORT
inline constexpr int64_t kServePort = 8080;
// The store of a config whose store is a relative path (only meaningful on one machine).
inline constexpr const char* kClusterStore = "s3://ddpipe";

// Which Kubeflow operator runs the training: the training operator v1.8 (PyTorchJob) or
// Kubeflow Trainer v2.3 (TrainJob + TrainingRuntime, trainer.kubeflow.org/v1alpha1).
enum class Operator { kPyTorchJob, kTrainerV2 };
inline constexpr Operator kDefaultOperator = Operator::kPyTorchJob;
// The --operator names: "pytorchjob", "trainer-v2".
std::string operator_name(Operator op);
// Throws core::Error(kUsage) naming the choices for any other name.
Operator operator_from_name(const std::string& name);

// The TrainingRuntime a rendered TrainJob `job` references.
std::string trainer_runtime_name(const std::string& job);

// A training pod's terminationGracePeriodSeconds: ceil(core::preempt_stop_seconds(checkpoint)),
// so that a rank that gets SIGTERM can store its preemption checkpoint and exit before SIGKILL.
int64_t training_grace_seconds(const core::Config& config);

struct RenderOptions {
  Operator op = kDefaultOperator;
  int64_t workers = 1;  // Worker replicas beside the Master (trainer-v2: numNodes = workers + 1)
  std::string image = "ddpipe:local";
  std::string job_name;  // "" = the config's `name` as a DNS label
  std::string namespace_name = "mlops-light";
  std::string source;  // how it was made, for the header comment
  // metrics.port of the training pods (0 = off): the training pods declare it and carry the
  // prometheus.io scrape annotations.
  int64_t metrics_port = 9400;
};

// The config the pods run: a relative local store becomes kClusterStore (absolute paths,
// file:// and s3:// stay: an absolute path needs a filesystem shared by every pod), and the
// s3 credentials and endpoint are cleared so that the pods' AWS_* environment applies.
core::Config cluster_config(const core::Config& config);

// YAML of the keys whose values differ from the embedded defaults (secrets never included):
// config_from_yaml() of it gives `config` back. This is the ConfigMap's config.yaml.
std::string config_delta(const core::Config& config);

// The job name: `requested`, else the config's name lowercased with other characters turned to
// '-'. Throws core::Error(kUsage) unless it is a DNS-1035 label of at most 40 characters (pod and
// Service names `<job>-worker-<i>` must stay valid).
std::string job_name_for(const core::Config& config, const std::string& requested);

// Every object, in apply order. Logs a warning when the dataset's raw files are not in the
// image. Throws core::Error(kUsage) for a bad job name, image or worker count.
std::vector<Object> render(const core::Config& config, const RenderOptions& options);

// render() as one YAML stream with a header comment.
std::string render_yaml(const core::Config& config, const RenderOptions& options);

}  // namespace ddpipe::k8s
