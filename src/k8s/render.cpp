#include "k8s/render.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <regex>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "k8s/trainjob.h"
#include "storage/store.h"

namespace ddpipe::k8s {
namespace {

constexpr const char* kMinioImage = "quay.io/minio/minio:RELEASE.2024-07-16T23-46-41Z";
constexpr const char* kSecret = "minio-credentials";
constexpr const char* kServiceAccount = "ddpipe";
constexpr const char* kConfigFile = "/etc/ddpipe/config.yaml";
constexpr int64_t kTrainCpus = 2;  // per replica; also train.threads when the config says 0

Object labels(const std::string& name, const std::string& component,
              const std::string& instance = "") {
  Object l = Object::object();
  l["app.kubernetes.io/name"] = name;
  l["app.kubernetes.io/component"] = component;
  l["app.kubernetes.io/part-of"] = "ddpipe";
  if (!instance.empty()) l["app.kubernetes.io/instance"] = instance;
  return l;
}

Object object(const std::string& api_version, const std::string& kind, const std::string& name,
              const std::string& ns, const Object& object_labels) {
  Object o = Object::object();
  o["apiVersion"] = api_version;
  o["kind"] = kind;
  o["metadata"]["name"] = name;
  if (!ns.empty()) o["metadata"]["namespace"] = ns;
  o["metadata"]["labels"] = object_labels;
  return o;
}

Object value_env(const std::string& name, const std::string& value) {
  return Object{{"name", name}, {"value", value}};
}

Object secret_env(const std::string& name, const std::string& key) {
  Object e = Object::object();
  e["name"] = name;
  e["valueFrom"]["secretKeyRef"] = Object{{"name", kSecret}, {"key", key}};
  return e;
}

Object strings(const std::vector<std::string>& items) {
  Object a = Object::array();
  for (const auto& s : items) a.push_back(s);
  return a;
}

Object resources(const std::string& cpu_request, const std::string& memory_request,
                 const std::string& cpu_limit, const std::string& memory_limit) {
  Object r = Object::object();
  r["requests"] = Object{{"cpu", cpu_request}, {"memory", memory_request}};
  r["limits"] = Object{{"cpu", cpu_limit}, {"memory", memory_limit}};
  return r;
}

Object http_probe(const std::string& path, const std::string& port, int64_t delay, int64_t period,
                  int64_t failures) {
  Object p = Object::object();
  p["httpGet"] = Object{{"path", path}, {"port", port}};
  p["initialDelaySeconds"] = delay;
  p["periodSeconds"] = period;
  p["failureThreshold"] = failures;
  return p;
}

// A path inside the image: "~/x" and relative paths are under the image's HOME (= WORKDIR).
std::string image_path(const std::string& path) {
  if (path.rfind("~/", 0) == 0) return std::string(kImageHome) + path.substr(1);
  if (!path.empty() && path[0] == '/') return path;
  return (std::filesystem::path(kImageHome) / path).lexically_normal().string();
}

// What every ddpipe pod shares: the config, a writable cache and /tmp on a read-only root.
struct PodParts {
  Object volumes = Object::array();
  Object mounts = Object::array();
  void add(const std::string& name, const std::string& path, Object source, bool read_only) {
    Object v = Object{{"name", name}};
    for (auto it = source.begin(); it != source.end(); ++it) v[it.key()] = it.value();
    volumes.push_back(v);
    Object m = Object{{"name", name}, {"mountPath", path}};
    if (read_only) m["readOnly"] = true;
    mounts.push_back(m);
  }
};

PodParts ddpipe_pod_parts(const core::Config& config, const std::string& config_map) {
  PodParts parts;
  Object cm = Object::object();
  cm["configMap"]["name"] = config_map;
  parts.add("config", kConfigDir, cm, true);
  Object empty = Object::object();
  empty["emptyDir"] = Object::object();
  parts.add("cache", image_path(config.cache_dir), empty, false);
  parts.add("tmp", "/tmp", empty, false);
  return parts;
}

Object ddpipe_container(const std::string& name, const RenderOptions& o,
                        const std::vector<std::string>& args, Object env, Object res,
                        const PodParts& parts) {
  Object c = Object::object();
  c["name"] = name;
  c["image"] = o.image;
  c["imagePullPolicy"] = "IfNotPresent";
  c["command"] = strings({kImageBinary});
  c["args"] = strings(args);
  for (const auto& e : {secret_env("AWS_ACCESS_KEY_ID", "access-key"),
                        secret_env("AWS_SECRET_ACCESS_KEY", "secret-key"),
                        value_env("AWS_ENDPOINT_URL_S3", "http://minio:9000"),
                        value_env("AWS_REGION", "us-east-1")}) {
    env.push_back(e);
  }
  c["env"] = env;
  c["resources"] = res;
  c["volumeMounts"] = parts.mounts;
  Object sc = Object::object();
  sc["allowPrivilegeEscalation"] = false;
  sc["readOnlyRootFilesystem"] = true;
  sc["capabilities"]["drop"] = strings({"ALL"});
  c["securityContext"] = sc;
  return c;
}

Object ddpipe_pod_spec(Object containers, const PodParts& parts, Object init_containers = nullptr) {
  Object s = Object::object();
  s["serviceAccountName"] = kServiceAccount;
  Object sc = Object::object();
  sc["runAsNonRoot"] = true;
  sc["runAsUser"] = kImageUid;
  sc["runAsGroup"] = kImageUid;
  sc["fsGroup"] = kImageUid;
  sc["seccompProfile"]["type"] = "RuntimeDefault";
  s["securityContext"] = sc;
  if (!init_containers.is_null()) s["initContainers"] = std::move(init_containers);
  s["containers"] = std::move(containers);
  s["volumes"] = parts.volumes;
  return s;
}

std::vector<Object> minio(const std::string& ns) {
  const Object l = labels("minio", "storage");
  Object pvc = object("v1", "PersistentVolumeClaim", "minio-data", ns, l);
  pvc["spec"]["accessModes"] = strings({"ReadWriteOnce"});
  pvc["spec"]["resources"]["requests"]["storage"] = "10Gi";

  Object c = Object::object();
  c["name"] = "minio";
  c["image"] = kMinioImage;
  c["args"] = strings({"server", "/data", "--console-address", ":9001"});
  Object env = Object::array();
  for (const auto& [var, key] : {std::pair{"MINIO_ROOT_USER", "access-key"},
                                 std::pair{"MINIO_ROOT_PASSWORD", "secret-key"}}) {
    Object e = Object::object();
    e["name"] = var;
    e["valueFrom"]["secretKeyRef"] = Object{{"name", kSecret}, {"key", key}};
    env.push_back(e);
  }
  c["env"] = env;
  c["ports"] = Object::array({Object{{"name", "api"}, {"containerPort", 9000}},
                              Object{{"name", "console"}, {"containerPort", 9001}}});
  c["readinessProbe"] = http_probe("/minio/health/ready", "api", 5, 5, 3);
  c["livenessProbe"] = http_probe("/minio/health/live", "api", 10, 10, 6);
  c["resources"] = resources("100m", "256Mi", "1", "1Gi");
  c["volumeMounts"] = Object::array({Object{{"name", "data"}, {"mountPath", "/data"}}});

  Object dep = object("apps/v1", "Deployment", "minio", ns, l);
  dep["spec"]["replicas"] = 1;
  dep["spec"]["strategy"]["type"] = "Recreate";  // one pod owns the ReadWriteOnce volume
  dep["spec"]["selector"]["matchLabels"] = l;
  dep["spec"]["template"]["metadata"]["labels"] = l;
  dep["spec"]["template"]["spec"]["containers"] = Object::array({c});
  Object vol = Object::object();
  vol["name"] = "data";
  vol["persistentVolumeClaim"]["claimName"] = "minio-data";
  dep["spec"]["template"]["spec"]["volumes"] = Object::array({vol});

  Object svc = object("v1", "Service", "minio", ns, l);
  svc["spec"]["selector"] = l;
  svc["spec"]["ports"] = Object::array(
      {Object{{"name", "api"}, {"port", 9000}, {"targetPort", "api"}, {"protocol", "TCP"}},
       Object{
           {"name", "console"}, {"port", 9001}, {"targetPort", "console"}, {"protocol", "TCP"}}});
  return {pvc, dep, svc};
}

Object replica_spec(int64_t replicas, const Object& pod_template) {
  Object r = Object::object();
  r["replicas"] = replicas;
  // ddpipe's exit codes: 1-127 permanent (the operator gives up), 128+ retryable (pod restarted).
  r["restartPolicy"] = "ExitCode";
  r["template"] = pod_template;
  return r;
}

void warn_about_data(const core::Config& c) {
  if (c.data.format == "synthetic" || c.data.download || c.data.path == kImageDataset) return;
  core::log::warn("k8s",
                  "the init Job ingests data.path inside the image, which holds only " +
                      std::string(kImageDataset) +
                      ": ingest this dataset into the store beforehand (ddpipe ingest "
                      "--store <store> through the MinIO port-forward), or use "
                      "data.download or a synthetic dataset",
                  {{"data.path", c.data.path}, {"data.format", c.data.format}});
}

// The job's Namespace, ServiceAccount, MinIO Secret and ConfigMap (named <job>-config).
std::vector<Object> config_objects(const std::string& ns, const std::string& job,
                                   const std::string& config_text) {
  std::vector<Object> out;
  out.push_back(object("v1", "Namespace", ns, "", labels("ddpipe", "config")));

  Object sa = object("v1", "ServiceAccount", kServiceAccount, ns, labels("ddpipe", "config"));
  sa["automountServiceAccountToken"] = false;  // ddpipe never talks to the API server
  out.push_back(sa);

  Object secret = object("v1", "Secret", kSecret, ns, labels("minio", "config"));
  secret["metadata"]["annotations"]["ddpipe.io/note"] =
      "development credentials for a local cluster; production creates this Secret itself";
  secret["type"] = "Opaque";
  secret["stringData"] =
      Object{{"access-key", "ddpipe-admin"}, {"secret-key", "ddpipe-dev-password"}};
  out.push_back(secret);

  Object cm = object("v1", "ConfigMap", job + "-config", ns, labels("ddpipe", "config", job));
  cm["data"]["config.yaml"] = config_text;
  out.push_back(cm);
  return out;
}

// init: the bucket (the first write creates it) and the ingested dataset.
Object init_job(const core::Config& cluster, const RenderOptions& o, const std::string& job) {
  const std::string& ns = o.namespace_name;
  const std::string config_map = job + "-config";
  PodParts parts = ddpipe_pod_parts(cluster, config_map);
  if (cluster.data.download) {
    Object empty = Object::object();
    empty["emptyDir"] = Object::object();
    parts.add("data", image_path(cluster.data.path), empty, false);
  }
  const Object l = labels("ddpipe", "init", job);
  const Object res = resources("500m", "512Mi", "2", "2Gi");
  Object bucket =
      ddpipe_container("bucket", o,
                       {"store", "cp", kConfigFile, cluster.store + "/jobs/" + job + "/config.yaml",
                        "--config", kConfigFile},
                       Object::array(), res, parts);
  Object ingest = ddpipe_container("ingest", o, {"ingest", "--config", kConfigFile},
                                   Object::array(), res, parts);
  Object spec = ddpipe_pod_spec(Object::array({ingest}), parts, Object::array({bucket}));
  spec["restartPolicy"] = "OnFailure";
  Object init = object("batch/v1", "Job", job + "-init", ns, l);
  init["spec"]["backoffLimit"] = 6;
  init["spec"]["template"]["metadata"]["labels"] = l;
  init["spec"]["template"]["spec"] = spec;
  return init;
}

// The training pod of either operator: `ddpipe train` in a container named `container_name`
// (the one the operator configures), metrics port and scrape annotations, the grace period.
Object training_pod(const core::Config& cluster, const RenderOptions& o, const std::string& job,
                    const std::string& container_name, const Object& rendezvous_port) {
  const PodParts parts = ddpipe_pod_parts(cluster, job + "-config");
  std::vector<std::string> args = {"train", "--config", kConfigFile};
  if (cluster.train.threads == 0) {
    // A container sees every core of the node; use the ones it may run on.
    args.insert(args.end(), {"--set", "train.threads=" + std::to_string(kTrainCpus)});
  }
  Object c = ddpipe_container(
      container_name, o, args, Object::array({value_env("DDPIPE_RUN_ID", job)}),
      resources(std::to_string(kTrainCpus), "2Gi", std::to_string(kTrainCpus), "4Gi"), parts);
  c["ports"] = Object::array();
  if (!rendezvous_port.is_null()) c["ports"].push_back(rendezvous_port);
  Object pod = Object::object();
  pod["metadata"]["labels"] = labels("ddpipe", "train", job);
  if (const int64_t port = cluster.telemetry.metrics_port; port > 0) {
    c["ports"].push_back(Object{{"name", "metrics"}, {"containerPort", port}, {"protocol", "TCP"}});
    // The annotations of Prometheus's kubernetes-pods scrape job (docs/telemetry.md).
    pod["metadata"]["annotations"]["prometheus.io/scrape"] = "true";
    pod["metadata"]["annotations"]["prometheus.io/port"] = std::to_string(port);
    pod["metadata"]["annotations"]["prometheus.io/path"] = "/metrics";
  }
  if (c["ports"].empty()) c.erase("ports");
  pod["spec"] = ddpipe_pod_spec(Object::array({c}), parts);
  // SIGTERM (preemption, eviction): the rank checkpoints within checkpoint.preempt_grace_s.
  pod["spec"]["terminationGracePeriodSeconds"] = training_grace_seconds(cluster);
  return pod;
}

int64_t restarts_of(const core::Config& cluster) {
  return cluster.dist.max_restarts > 0 ? cluster.dist.max_restarts : 3;
}

// train (pytorchjob): the PyTorchJob.
Object pytorchjob(const core::Config& cluster, const RenderOptions& o, const std::string& job) {
  const Object pod = training_pod(
      cluster, o, job, "pytorch",
      Object{{"name", "pytorchjob-port"}, {"containerPort", kMasterPort}, {"protocol", "TCP"}});
  Object pj = object("kubeflow.org/v1", "PyTorchJob", job, o.namespace_name,
                     labels("ddpipe", "train", job));
  pj["spec"]["nprocPerNode"] = "1";  // one `ddpipe train` per pod: WORLD_SIZE = pods
  pj["spec"]["runPolicy"]["cleanPodPolicy"] = "None";
  pj["spec"]["runPolicy"]["backoffLimit"] = restarts_of(cluster);
  pj["spec"]["pytorchReplicaSpecs"]["Master"] = replica_spec(1, pod);
  if (o.workers > 0) pj["spec"]["pytorchReplicaSpecs"]["Worker"] = replica_spec(o.workers, pod);
  return pj;
}

// train (trainer-v2): the TrainingRuntime (the pod and the exit-code contract) and the TrainJob
// (what runs: image, command, args, env, resources, nodes). ddpipe's exit codes: 1-127 fail the
// node's Job through its podFailurePolicy (reason PodFailurePolicy), which fails the JobSet;
// a preemption (every rank checkpointed and exited 143, or the pod was evicted: condition
// DisruptionTarget) is ignored: the Job recreates its pod without counting a failure, so
// preemptions do not use up the restart budget; other 128+ codes fail the Job (backoffLimit 0),
// and the JobSet recreates every Job, at most maxRestarts times: all ranks restart together and
// resume from the run's checkpoints.
std::vector<Object> trainer_v2(const core::Config& cluster, const RenderOptions& o,
                               const std::string& job) {
  const Object l = labels("ddpipe", "train", job);
  Object pod = training_pod(cluster, o, job, kTrainerV2Container, nullptr);
  pod["spec"]["restartPolicy"] = "Never";  // podFailurePolicy requires it
  Object& c = pod["spec"]["containers"][0];
  Object trainer = Object::object();
  trainer["image"] = c["image"];
  trainer["command"] = c["command"];
  trainer["args"] = c["args"];
  trainer["env"] = c["env"];
  trainer["numNodes"] = o.workers + 1;
  trainer["numProcPerNode"] = 1;  // one `ddpipe train` per pod: PET_NPROC_PER_NODE=1
  trainer["resourcesPerNode"] = c["resources"];
  for (const char* key : {"image", "command", "args", "env", "resources"}) c.erase(key);

  Object exit_codes = Object::array();  // the permanent ones: 1 up to the first retryable one
  for (int code = 1; code < core::exit_code(core::ErrorKind::kRetryable); ++code) {
    exit_codes.push_back(code);
  }
  Object permanent = Object::object();
  permanent["action"] = "FailJob";
  permanent["onExitCodes"] =
      Object{{"containerName", kTrainerV2Container}, {"operator", "In"}, {"values", exit_codes}};
  Object preempted = Object::object();
  preempted["action"] = "Ignore";
  preempted["onExitCodes"] =
      Object{{"containerName", kTrainerV2Container},
             {"operator", "In"},
             {"values", Object::array({core::exit_code(core::ErrorKind::kPreempted)})}};
  Object evicted = Object::object();
  evicted["action"] = "Ignore";
  evicted["onPodConditions"] = Object::array({Object{{"type", "DisruptionTarget"}}});
  Object node_job = Object::object();
  node_job["metadata"]["labels"][kTrainerAncestorLabel] = kTrainerAncestorStep;
  node_job["spec"]["backoffLimit"] = 0;
  node_job["spec"]["podFailurePolicy"]["rules"] = Object::array({permanent, preempted, evicted});
  node_job["spec"]["template"] = pod;

  Object runtime = object(std::string(kTrainerApiVersion), "TrainingRuntime",
                          trainer_runtime_name(job), o.namespace_name, l);
  runtime["metadata"]["labels"]["trainer.kubeflow.org/framework"] = "torch";
  runtime["spec"]["mlPolicy"]["numNodes"] = 1;
  runtime["spec"]["mlPolicy"]["torch"] = Object::object();
  Object& jobset = runtime["spec"]["template"]["spec"];
  jobset["failurePolicy"]["maxRestarts"] = restarts_of(cluster);
  jobset["failurePolicy"]["rules"] =
      Object::array({Object{{"name", "permanent-exit-code"},
                            {"action", "FailJobSet"},
                            {"onJobFailureReasons", strings({"PodFailurePolicy"})}}});
  jobset["replicatedJobs"] =
      Object::array({Object{{"name", kTrainerV2Job}, {"template", node_job}}});

  Object tj = object(std::string(kTrainerApiVersion), "TrainJob", job, o.namespace_name, l);
  tj["spec"]["runtimeRef"] = Object{{"name", trainer_runtime_name(job)},
                                    {"apiGroup", kTrainerApiGroup},
                                    {"kind", "TrainingRuntime"}};
  tj["spec"]["trainer"] = trainer;
  return {runtime, tj};
}

// serve: follows serve.version (default `latest`), so new versions need no rollout; a changed
// config does (its digest is in the pod template).
std::vector<Object> serve_objects(const core::Config& cluster, const RenderOptions& o,
                                  const std::string& job, const std::string& config_text) {
  const std::string& ns = o.namespace_name;
  const std::string config_map = job + "-config";
  std::vector<Object> out;
  const PodParts parts = ddpipe_pod_parts(cluster, config_map);
  const Object l = labels("ddpipe", "serve", job);
  Object c = ddpipe_container(
      "serve", o,
      {"serve", "--host", "0.0.0.0", "--port", std::to_string(kServePort), "--config", kConfigFile},
      Object::array(), resources("500m", "512Mi", "2", "2Gi"), parts);
  c["ports"] =
      Object::array({Object{{"name", "http"}, {"containerPort", kServePort}, {"protocol", "TCP"}}});
  c["readinessProbe"] = http_probe("/v2/health/ready", "http", 2, 5, 2);
  c["livenessProbe"] = http_probe("/v2/health/live", "http", 10, 10, 6);

  Object dep = object("apps/v1", "Deployment", job + "-serve", ns, l);
  dep["spec"]["replicas"] = 1;
  dep["spec"]["selector"]["matchLabels"] = l;
  dep["spec"]["strategy"]["type"] = "RollingUpdate";
  dep["spec"]["strategy"]["rollingUpdate"] = Object{{"maxSurge", 1}, {"maxUnavailable", 0}};
  dep["spec"]["template"]["metadata"]["labels"] = l;
  dep["spec"]["template"]["metadata"]["annotations"]["ddpipe.io/config-sha256"] =
      core::sha256_hex(config_text);
  Object spec = ddpipe_pod_spec(Object::array({c}), parts);
  spec["terminationGracePeriodSeconds"] = 30;  // `ddpipe serve` drains on SIGTERM
  dep["spec"]["template"]["spec"] = spec;
  out.push_back(dep);

  Object svc = object("v1", "Service", job + "-serve", ns, l);
  svc["spec"]["selector"] = l;
  svc["spec"]["ports"] = Object::array({Object{
      {"name", "http"}, {"port", kServePort}, {"targetPort", "http"}, {"protocol", "TCP"}}});
  out.push_back(svc);
  return out;
}

}  // namespace

std::string operator_name(Operator op) {
  return op == Operator::kTrainerV2 ? "trainer-v2" : "pytorchjob";
}

Operator operator_from_name(const std::string& name) {
  for (Operator op : {Operator::kPyTorchJob, Operator::kTrainerV2}) {
    if (operator_name(op) == name) return op;
  }
  core::fail_usage(
      "--operator: expected pytorchjob (Kubeflow training operator v1.8, the "
      "default) or trainer-v2 (Kubeflow Trainer v2.3), got '" +
      name + "'");
}

std::string trainer_runtime_name(const std::string& job) { return job + "-runtime"; }

int64_t training_grace_seconds(const core::Config& config) {
  return static_cast<int64_t>(std::ceil(core::preempt_stop_seconds(config.checkpoint)));
}

core::Config cluster_config(const core::Config& config) {
  core::Config c = config;
  const storage::StoreUrl store = storage::parse_store_url(c.store);
  if (!store.is_s3() && !store.is_absolute_path()) {  // relative or ~: this machine's
    c.store = kClusterStore;
  } else if (!store.is_s3()) {
    core::log::warn("k8s",
                    "the store is a local path: every pod must see the same folder there "
                    "(a shared volume); s3:// stores in the cluster's MinIO need none",
                    {{"store", c.store}});
  }
  c.s3.endpoint.clear();
  c.s3.access_key_id.clear();
  c.s3.secret_access_key.clear();
  c.s3.session_token.clear();
  return c;
}

std::string config_delta(const core::Config& config) {
  const YAML::Node mine = YAML::Load(core::to_yaml(config));
  const YAML::Node defaults = YAML::Load(core::to_yaml(core::Config{}));
  YAML::Node delta(YAML::NodeType::Map);
  for (auto it = mine.begin(); it != mine.end(); ++it) {
    const std::string key = it->first.Scalar();
    if (it->second.IsMap()) {
      for (auto f = it->second.begin(); f != it->second.end(); ++f) {
        const std::string field = f->first.Scalar();
        const std::string value = f->second.Scalar();
        if (value != core::kRedacted && value != defaults[key][field].Scalar()) {
          delta[key][field] = f->second;
        }
      }
    } else if (it->second.Scalar() != defaults[key].Scalar()) {
      delta[key] = it->second;
    }
  }
  YAML::Emitter out;
  out << delta;
  return "# The keys that differ from ddpipe's embedded defaults (`ddpipe config show --config\n"
         "# this-file` prints them all). Credentials come from the environment, never from "
         "here.\n" +
         std::string(out.c_str()) + "\n";
}

std::string job_name_for(const core::Config& config, const std::string& requested) {
  std::string name = requested;
  if (name.empty()) {
    for (char ch : config.name) {
      const unsigned char u = static_cast<unsigned char>(ch);
      name += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '-';
    }
  }
  static const std::regex kLabel("[a-z]([-a-z0-9]*[a-z0-9])?");
  if (!std::regex_match(name, kLabel) || name.size() > 40) {
    core::fail_usage("job name '" + name +
                     "': must be at most 40 characters of a-z, 0-9 and '-', "
                     "starting with a letter and not ending with '-' (pods are named "
                     "<job>-worker-<i>); choose one with --job-name");
  }
  return name;
}

std::vector<Object> render(const core::Config& config, const RenderOptions& o) {
  if (o.workers < 0 || o.workers > 10000) {
    core::fail_usage("--workers: expected 0 to 10000, got " + std::to_string(o.workers));
  }
  if (o.image.empty() || o.image.find_first_of(" \t\n") != std::string::npos) {
    core::fail_usage("--image: expected an image reference such as ddpipe:local, got '" + o.image +
                     "'");
  }
  const std::string job = job_name_for(config, o.job_name);
  core::Config cluster = cluster_config(config);
  cluster.telemetry.metrics_port = o.metrics_port;  // one rank per pod: the port itself
  const std::string config_text = config_delta(cluster);
  warn_about_data(cluster);

  std::vector<Object> out = config_objects(o.namespace_name, job, config_text);
  for (auto& m : minio(o.namespace_name)) out.push_back(m);
  out.push_back(init_job(cluster, o, job));
  if (o.op == Operator::kTrainerV2) {
    for (auto& t : trainer_v2(cluster, o, job)) out.push_back(t);
  } else {
    out.push_back(pytorchjob(cluster, o, job));
  }
  for (auto& m : serve_objects(cluster, o, job, config_text)) out.push_back(m);
  return out;
}

std::string render_yaml(const core::Config& config, const RenderOptions& o) {
  const std::string job = job_name_for(config, o.job_name);
  const std::string world = "(world size " + std::to_string(o.workers + 1) + ")";
  const std::string what =
      o.op == Operator::kTrainerV2
          ? "TrainJob " + job + " (Kubeflow Trainer v2): " + std::to_string(o.workers + 1) +
                " nodes " + world + " on TrainingRuntime " + trainer_runtime_name(job)
          : "PyTorchJob " + job + ": 1 Master + " + std::to_string(o.workers) +
                (o.workers == 1 ? " Worker " : " Workers ") + world;
  const std::string header =
      (o.source.empty() ? "Rendered by ddpipe k8s render" : "Rendered by: " + o.source) + "\n" +
      what + ", image " + o.image + ", namespace " + o.namespace_name +
      ".\n"
      "Render again rather than editing. Apply all: kubectl apply -f FILE; or in phases with\n"
      "-l app.kubernetes.io/component=config, storage, init, train, serve (./quick-run.sh --k8s).";
  return to_yaml(render(config, o), header);
}

}  // namespace ddpipe::k8s
