// ddpipe::k8s without a cluster: YAML streams, rendering, the operator's pod environment (against
// golden data derived from the training operator v1.8.1) and local pods.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "k8s/local_pods.h"
#include "k8s/manifest.h"
#include "k8s/pytorchjob.h"
#include "k8s/render.h"
#include "k8s/trainjob.h"
#include "storage/store.h"
#include "test_util.h"

namespace ddpipe::k8s {
namespace {

namespace fs = std::filesystem;

using testing::usage_error;

const Object* find(const std::vector<Object>& objects, const std::string& kind,
                   const std::string& name) {
  for (const auto& o : objects) {
    if (o["kind"] == kind && o["metadata"]["name"] == name) return &o;
  }
  return nullptr;
}

std::string env_of(const Object& container, const std::string& name) {
  for (const auto& e : container["env"]) {
    if (e["name"] == name) return e.contains("value") ? e["value"].get<std::string>() : "<ref>";
  }
  return "<unset>";
}

TEST(Manifest, RoundTripKeepsTypesAndQuotesAmbiguousStrings) {
  Object o = Object::object();
  o["port"] = "23456";
  o["flag"] = "true";
  o["yaml11_bool"] = "on";
  o["empty"] = "";
  o["float_text"] = "1.5";
  o["ip"] = "10.233.0.1";
  o["quantity"] = "2Gi";
  o["colon"] = "a: b";
  o["multi"] = "line one\nline two\n";
  o["n"] = 3;
  o["x"] = 0.25;
  o["b"] = false;
  o["nothing"] = nullptr;
  o["empty_map"] = Object::object();
  o["list"] = Object::array({"- dash", 1, Object::array()});
  const std::string text = to_yaml({o, Object{{"kind", "Second"}}}, "a header\nline two");
  EXPECT_EQ(text.rfind("# a header\n# line two\n---\n", 0), 0u) << text;
  EXPECT_NE(text.find("port: \"23456\""), std::string::npos) << text;
  EXPECT_NE(text.find("yaml11_bool: \"on\""), std::string::npos) << text;
  EXPECT_NE(text.find("quantity: 2Gi"), std::string::npos) << text;
  EXPECT_NE(text.find("multi: |"), std::string::npos) << text;
  auto back = parse_manifests(text, "round trip");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0], o) << back[0].dump(2);
  EXPECT_EQ(back[1]["kind"], "Second");
}

// Keys with line breaks or control characters, and keys past YAML's 1024-character limit for an
// implicit key, were written in ways that did not read back (found by tests/k8s/fuzz).
TEST(Manifest, AnyKeyReadsBack) {
  Object o = Object::object();
  o["app.kubernetes.io/name"] = 1;
  o["two\nlines"] = 2;
  o["tab\tand \x03"] = 3;
  o["colon: hash #"] = 4;
  o["true"] = 5;
  o[std::string(1100, 'k')] = 6;
  o[std::string(600, '\x01')] = 7;
  const std::string text = to_yaml({o});
  EXPECT_NE(text.find("\napp.kubernetes.io/name: 1\n"), std::string::npos) << text;
  const auto back = parse_manifests(text, "round trip");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], o) << text;
}

TEST(Manifest, PlainScalarsAreTypedQuotedOnesAreStrings) {
  auto docs = parse_manifests("---\n---\na: 1\nb: '1'\nc: true\nd: ~\ne: 1e3\nf: x1\n", "t");
  ASSERT_EQ(docs.size(), 1u);  // the empty document is skipped
  EXPECT_EQ(docs[0]["a"], 1);
  EXPECT_EQ(docs[0]["b"], "1");
  EXPECT_EQ(docs[0]["c"], true);
  EXPECT_TRUE(docs[0]["d"].is_null());
  EXPECT_EQ(docs[0]["e"], 1000.0);
  EXPECT_EQ(docs[0]["f"], "x1");
  EXPECT_NE(usage_error([] { parse_manifests("a: [1, 2\n", "job.yaml"); }).find("job.yaml"),
            std::string::npos);
  EXPECT_NE(usage_error([] { parse_manifests("- a\n- b\n", "list.yaml"); }).find("mapping"),
            std::string::npos);
}

// yaml-cpp 0.7's LoadAll looped forever, allocating, on malformed streams such as ",\n" (found
// by tests/k8s/fuzz); the stream is now split into documents, each loaded alone.
TEST(Manifest, MalformedStreamsEndAndDocumentsSplitAtMarkers) {
  try {
    parse_manifests(",\n", "comma.yaml");
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("comma.yaml"), std::string::npos) << e.what();
  }
  const auto docs = parse_manifests("a: 1\n...\n---\nb: 2\n--- {c: 3}\n---\n", "t");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[2]["c"], 3);
  EXPECT_NE(usage_error([] {
              parse_manifests("a: 1\n---\nb: [1\n", "j.yaml");
            }).find("j.yaml: not valid YAML at line"),
            std::string::npos);
}

TEST(Render, ConfigDeltaGivesTheSameConfigBackWithoutSecrets) {
  for (const std::string file :
       {"default.yaml", "seed-cifar10-resnet18.yaml", "synthetic-bench.yaml"}) {
    core::Config c = core::load_config(std::string(DDPIPE_SOURCE_DIR) + "/configs/" + file,
                                       {"s3.secret_access_key=hunter2-secret", "train.epochs=3"});
    const std::string delta = config_delta(c);
    EXPECT_EQ(delta.find("hunter2"), std::string::npos) << delta;
    EXPECT_EQ(delta.find("secret_access_key"), std::string::npos) << delta;
    core::Config back = core::config_from_yaml(delta);
    c.s3.secret_access_key.clear();
    EXPECT_EQ(core::to_yaml(back), core::to_yaml(c)) << file << ":\n" << delta;
  }
  EXPECT_EQ(config_delta(core::Config{}).find("store"), std::string::npos);
}

TEST(Render, ClusterConfigMovesRelativeStoresToMinioAndDropsCredentials) {
  core::Config c;
  c.s3.endpoint = "http://localhost:9000";
  c.s3.access_key_id = "AKIDEXAMPLE";
  EXPECT_EQ(cluster_config(c).store, kClusterStore);
  EXPECT_TRUE(cluster_config(c).s3.endpoint.empty());
  EXPECT_TRUE(cluster_config(c).s3.access_key_id.empty());
  c.store = "s3://models-bucket/team";
  EXPECT_EQ(cluster_config(c).store, "s3://models-bucket/team");
  c.store = "/shared/artifacts";
  EXPECT_EQ(cluster_config(c).store, "/shared/artifacts");
}

TEST(Render, JobNames) {
  core::Config c;
  EXPECT_EQ(job_name_for(c, ""), "fmnist-resnet");
  c.name = "CIFAR10_ResNet18";
  EXPECT_EQ(job_name_for(c, ""), "cifar10-resnet18");
  EXPECT_EQ(job_name_for(c, "nightly-7"), "nightly-7");
  c.name = "9lives";
  EXPECT_NE(usage_error([&] { job_name_for(c, ""); }).find("--job-name"), std::string::npos);
  EXPECT_NE(usage_error([&] { job_name_for(c, std::string(41, 'a')); }).find("40"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { job_name_for(c, "ends-"); }).find("--job-name"), std::string::npos);
}

TEST(Render, ObjectsInApplyOrderWiredTogether) {
  core::Config c;
  RenderOptions o;
  o.workers = 3;
  o.image = "registry.example.com/ddpipe:0.1.0";
  const auto objects = render(c, o);
  std::vector<std::string> kinds;
  for (const auto& x : objects) kinds.push_back(x["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"Namespace", "ServiceAccount", "Secret", "ConfigMap",
                                             "PersistentVolumeClaim", "Deployment", "Service",
                                             "Job", "PyTorchJob", "Deployment", "Service"}));
  for (const auto& x : objects) {
    EXPECT_NE(x["metadata"]["labels"].value("app.kubernetes.io/component", ""), "") << x.dump();
    if (x["kind"] != "Namespace") EXPECT_EQ(x["metadata"]["namespace"], "mlops-light");
  }
  const Object* job = find(objects, "PyTorchJob", "fmnist-resnet");
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(job->at("spec")["pytorchReplicaSpecs"]["Worker"]["replicas"], 3);
  const Object& master = job->at("spec")["pytorchReplicaSpecs"]["Master"];
  EXPECT_EQ(master["restartPolicy"], "ExitCode");
  const Object& pytorch = master["template"]["spec"]["containers"][0];
  EXPECT_EQ(pytorch["name"], "pytorch");
  EXPECT_EQ(pytorch["image"], o.image);
  EXPECT_EQ(pytorch["command"][0], kImageBinary);
  EXPECT_EQ(env_of(pytorch, "DDPIPE_RUN_ID"), "fmnist-resnet");
  EXPECT_EQ(env_of(pytorch, "AWS_SECRET_ACCESS_KEY"), "<ref>");
  const Object* cm = find(objects, "ConfigMap", "fmnist-resnet-config");
  ASSERT_NE(cm, nullptr);
  EXPECT_EQ(core::config_from_yaml(cm->at("data")["config.yaml"]).store, kClusterStore);
  const Object* serve = find(objects, "Deployment", "fmnist-resnet-serve");
  ASSERT_NE(serve, nullptr);
  const Object& sc = serve->at("spec")["template"]["spec"]["containers"][0];
  EXPECT_EQ(sc["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
  EXPECT_EQ(sc["livenessProbe"]["httpGet"]["path"], "/v2/health/live");

  o.workers = 0;
  const auto master_only = render(c, o);
  const Object* alone = find(master_only, "PyTorchJob", "fmnist-resnet");
  EXPECT_FALSE(alone->at("spec")["pytorchReplicaSpecs"].contains("Worker"));
  o.workers = -1;
  EXPECT_NE(usage_error([&] { render(c, o); }).find("--workers"), std::string::npos);
  o.workers = 1;
  o.image = "bad image";
  EXPECT_NE(usage_error([&] { render(c, o); }).find("--image"), std::string::npos);
}

// The operator's env for the examples beside the golden file, variable by variable, in order.
TEST(PyTorchJob, OperatorEnvMatchesTrainingOperatorV181) {
  const fs::path dir = testing::shared_dir() / "testdata/k8s";
  if (testing::shared_dir().empty()) GTEST_SKIP() << "../shared is absent: no golden k8s data";
  const auto golden =
      nlohmann::json::parse(core::read_file(dir / "pytorchjob_v1.8.1_expected_env.json"));
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    const std::string manifest = c["manifest"];
    const auto objects = parse_manifests(core::read_file(dir / manifest), manifest);
    const Object& job = find_pytorchjob(objects, manifest);
    if (job["spec"].contains("elasticPolicy")) {
      EXPECT_NE(usage_error([&] { plan_pytorchjob(job); }).find("elasticPolicy"),
                std::string::npos);
      continue;
    }
    const JobPlan plan = plan_pytorchjob(job);
    ASSERT_EQ(plan.pods.size(), c["pods"].size()) << manifest;
    for (const auto& pod : plan.pods) {
      ASSERT_TRUE(c["pods"].contains(pod.name)) << pod.name;
      EnvList expected;
      for (const auto& kv : c["pods"][pod.name]["env"]) expected.emplace_back(kv[0], kv[1]);
      EXPECT_EQ(pod.operator_env, expected) << pod.name;
      EXPECT_TRUE(c["services"].contains(pod.name)) << "a Service per pod, named like it";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2);
}

TEST(PyTorchJob, RenderedJobHasOneRankPerPod) {
  RenderOptions o;
  o.workers = 4;
  const JobPlan plan = plan_pytorchjob(find_pytorchjob(render(core::Config{}, o), "rendered"));
  EXPECT_EQ(plan.world_size, 5);
  EXPECT_EQ(plan.master_addr, "fmnist-resnet-master-0");
  EXPECT_EQ(plan.master_port, kMasterPort);
  ASSERT_EQ(plan.pods.size(), 5u);
  for (size_t i = 0; i < plan.pods.size(); ++i)
    EXPECT_EQ(plan.pods[i].rank, static_cast<int64_t>(i));
  EXPECT_EQ(plan.pods[4].name, "fmnist-resnet-worker-3");
}

// Prometheus finds every rank: the port in the config the pods read, declared on the container,
// and the kubernetes-pods scrape annotations on the pod template; metrics.port=0 removes them.
TEST(PyTorchJob, RanksServeMetricsOnADeclaredAnnotatedPort) {
  const auto objects = render(core::Config{}, RenderOptions{});
  const Object* job = find(objects, "PyTorchJob", "fmnist-resnet");
  ASSERT_NE(job, nullptr);
  const Object& pod = (*job)["spec"]["pytorchReplicaSpecs"]["Master"]["template"];
  EXPECT_EQ(pod["metadata"]["annotations"]["prometheus.io/scrape"], "true");
  EXPECT_EQ(pod["metadata"]["annotations"]["prometheus.io/port"], "9400");
  EXPECT_EQ(pod["metadata"]["annotations"]["prometheus.io/path"], "/metrics");
  const Object& ports = pod["spec"]["containers"][0]["ports"];
  EXPECT_EQ(ports.back(),
            (Object{{"name", "metrics"}, {"containerPort", 9400}, {"protocol", "TCP"}}));
  const Object* config_map = find(objects, "ConfigMap", "fmnist-resnet-config");
  ASSERT_NE(config_map, nullptr);
  EXPECT_NE((*config_map)["data"]["config.yaml"].get<std::string>().find("metrics:\n  port: 9400"),
            std::string::npos);

  RenderOptions off;
  off.metrics_port = 0;
  const auto quiet_objects = render(core::Config{}, off);
  const Object* quiet = find(quiet_objects, "PyTorchJob", "fmnist-resnet");
  ASSERT_NE(quiet, nullptr);
  const Object& quiet_pod = (*quiet)["spec"]["pytorchReplicaSpecs"]["Master"]["template"];
  EXPECT_FALSE(quiet_pod["metadata"].contains("annotations"));
  EXPECT_EQ(quiet_pod["spec"]["containers"][0]["ports"].size(), 1u);
}

TEST(PyTorchJob, RejectsWhatTheOperatorOrDdpipeCannotRun) {
  auto job = [](const std::string& replicas) {
    return parse_manifests(
        "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: j}\n"
        "spec:\n  pytorchReplicaSpecs:\n" +
            replicas,
        "j.yaml")[0];
  };
  const std::string pod = "      template: {spec: {containers: [{name: pytorch, image: x}]}}\n";
  EXPECT_NE(usage_error([&] {
              plan_pytorchjob(job("    Worker:\n      replicas: 2\n" + pod));
            }).find("no Master"),
            std::string::npos);
  EXPECT_NE(usage_error([&] {
              plan_pytorchjob(job("    Master:\n      replicas: 2\n" + pod));
            }).find("exactly 1"),
            std::string::npos);
  EXPECT_NE(
      usage_error([&] {
        plan_pytorchjob(job("    Master:\n      template: {spec: {containers: [{name: main}]}}\n"));
      }).find("'pytorch'"),
      std::string::npos);
  EXPECT_NE(usage_error([&] { find_pytorchjob({}, "empty.yaml"); }).find("empty.yaml"),
            std::string::npos);
}

TEST(LocalPods, PodEnvArgsAndVolumesAsTheClusterGivesThem) {
  testing::TempDir dir;
  RenderOptions o;
  o.workers = 1;
  const auto objects = render(core::Config{}, o);
  const auto pods =
      local_pods(objects, "rendered", dir.path(), {"10.0.0.2", "10.0.0.3"}, "/bin/ddp");
  ASSERT_EQ(pods.size(), 2u);
  const LocalPod& w = pods[1];
  EXPECT_EQ(w.name, "fmnist-resnet-worker-0");
  const fs::path root = dir / "fmnist-resnet-worker-0";
  EXPECT_EQ(w.argv, (std::vector<std::string>{"/bin/ddp", "train", "--config",
                                              (root / "etc/ddpipe/config.yaml").string(), "--set",
                                              "train.threads=2"}));
  EnvList expected_tail = {{"PYTHONUNBUFFERED", "1"},
                           {"MASTER_PORT", "23456"},
                           {"PET_MASTER_PORT", "23456"},
                           {"MASTER_ADDR", "fmnist-resnet-master-0"},
                           {"PET_MASTER_ADDR", "fmnist-resnet-master-0"},
                           {"WORLD_SIZE", "2"},
                           {"RANK", "1"},
                           {"PET_NODE_RANK", "1"},
                           {"PET_NPROC_PER_NODE", "1"},
                           {"PET_NNODES", "2"}};
  ASSERT_GE(w.env.size(), expected_tail.size());
  EXPECT_EQ(EnvList(w.env.end() - expected_tail.size(), w.env.end()), expected_tail);
  std::map<std::string, std::string> env(w.env.begin(), w.env.end());
  EXPECT_EQ(env["HOSTNAME"], "fmnist-resnet-worker-0");
  EXPECT_EQ(env["HOME"], (root / "home/ddpipe").string());
  EXPECT_EQ(env["AWS_SECRET_ACCESS_KEY"], "ddpipe-dev-password");  // from the Secret
  EXPECT_EQ(env["DDPIPE_RUN_ID"], "fmnist-resnet");
  EXPECT_EQ(w.workdir, root / "home/ddpipe");
  bool config_written = false;
  for (const auto& [path, text] : w.files) {
    if (path == root / "etc/ddpipe/config.yaml") {
      config_written = true;
      EXPECT_EQ(core::config_from_yaml(text).store, kClusterStore);
    }
  }
  EXPECT_TRUE(config_written);

  // A Secret the file does not hold cannot be resolved.
  std::vector<Object> without_secret;
  for (const auto& x : objects) {
    if (x["kind"] != "Secret") without_secret.push_back(x);
  }
  EXPECT_NE(usage_error([&] {
              local_pods(without_secret, "job.yaml", dir.path(), {"a", "b"}, "x");
            }).find("Secret 'minio-credentials'"),
            std::string::npos);
}

TEST(LocalPods, ExpandsVariableReferencesAndSecretVolumes) {
  testing::TempDir dir;
  const auto objects = parse_manifests(R"(
apiVersion: v1
kind: Secret
metadata: {name: tok}
data: {token: aHVudGVyMg==}
---
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: echo, namespace: team}
spec:
  pytorchReplicaSpecs:
    Master:
      template:
        spec:
          volumes: [{name: t, secret: {secretName: tok}}, {name: s, emptyDir: {}}]
          containers:
          - name: pytorch
            image: x
            command: [sh, -c]
            args: ["echo $(MASTER_ADDR):$(MASTER_PORT) $(WHO) $$(NOT) /scratch/out"]
            workingDir: /scratch
            env:
            - {name: WHO, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
            volumeMounts: [{name: t, mountPath: /var/run/tok}, {name: s, mountPath: /scratch}]
)",
                                       "echo.yaml");
  const auto pods = local_pods(objects, "echo.yaml", dir.path(), {"127.0.0.1"}, "/bin/ddp");
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].argv[0], "sh");
  EXPECT_EQ(pods[0].argv[2], "echo echo-master-0:23456 team $(NOT) /scratch/out");
  EXPECT_EQ(pods[0].workdir, dir / "echo-master-0/scratch");
  ASSERT_EQ(pods[0].files.size(), 1u);
  EXPECT_EQ(pods[0].files[0].first, dir / "echo-master-0/var/run/tok/token");
  EXPECT_EQ(pods[0].files[0].second, "hunter2");
}

// Found by tests/k8s/fuzz: a volume item path, a Secret key or a mountPath with ".." put the
// pod's files outside its folder (they are written there); a TrainJob without spec read a
// missing key through const operator[] (undefined); a field of the wrong type threw json's
// type_error. Each is now a usage error naming the file.
TEST(LocalPods, HostileJobFilesAreUsageErrors) {
  testing::TempDir dir;
  auto job = [](const std::string& volume, const std::string& mount) {
    return "apiVersion: v1\nkind: Secret\nmetadata: {name: tok}\n"
           "data: {token: aHVudGVyMg==, ../../../escape: eA==}\n---\n"
           "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: e}\nspec:\n"
           "  pytorchReplicaSpecs:\n    Master:\n      template:\n        spec:\n"
           "          volumes: [{name: t, secret: " +
           volume +
           "}]\n"
           "          containers:\n          - name: pytorch\n            volumeMounts: "
           "[{name: t, mountPath: " +
           mount + "}]\n";
  };
  auto error = [&](const std::string& yaml) {
    return usage_error([&] {
      local_pods(parse_manifests(yaml, "e.yaml"), "e.yaml", dir.path(), {"127.0.0.1"}, "/bin/d");
    });
  };
  const std::string item = "{secretName: tok, items: [{key: token, path: ../../x}]}";
  EXPECT_NE(error(job(item, "/tok")).find("path '../../x' leaves the pod's folder"),
            std::string::npos);
  EXPECT_NE(error(job("{secretName: tok}", "/tok")).find("leaves the pod's folder"),
            std::string::npos);
  EXPECT_NE(error(job("{secretName: tok, items: [{key: token}]}", "/../../etc"))
                .find("path '/../../etc' leaves the pod's folder"),
            std::string::npos);
  const auto pods =
      local_pods(parse_manifests(job("{secretName: tok, items: [{key: token}]}", "/tok"), "e.yaml"),
                 "e.yaml", dir.path(), {"127.0.0.1"}, "/bin/d");
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].files.at(0).first, dir / "e-master-0/tok/token");
  EXPECT_NE(error("apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: e}\n"
                  "spec: {pytorchReplicaSpecs: {Master: 5}}\n")
                .find("e.yaml: a field of the job has the wrong type"),
            std::string::npos);
  EXPECT_NE(usage_error([] {
              plan_trainjob(parse_manifests("apiVersion: trainer.kubeflow.org/v1alpha1\n"
                                            "kind: TrainJob\nmetadata: {name: j}\n",
                                            "j.yaml"),
                            "j.yaml");
            }).find("runtimeRef.name is missing"),
            std::string::npos);
}

// The Secret that `ddpipe k8s render` writes (for a development cluster) never holds MinIO's
// well-known defaults, which ddpipe warns about at runtime (storage::open_store).
TEST(Render, SecretNeverHoldsMinioDefaultCredentials) {
  for (const Operator op : {Operator::kPyTorchJob, Operator::kTrainerV2}) {
    RenderOptions o;
    o.op = op;
    const auto objects = render(core::Config{}, o);
    const Object* secret = find(objects, "Secret", "minio-credentials");
    ASSERT_NE(secret, nullptr);
    const Object& data = secret->at("stringData");
    EXPECT_FALSE(storage::is_minio_default_credentials(data["access-key"].get<std::string>(),
                                                       data["secret-key"].get<std::string>()))
        << secret->dump();
  }
}

TEST(Render, OperatorNamesAndDefault) {
  EXPECT_EQ(RenderOptions{}.op, Operator::kPyTorchJob);
  EXPECT_EQ(operator_from_name("pytorchjob"), Operator::kPyTorchJob);
  EXPECT_EQ(operator_from_name("trainer-v2"), Operator::kTrainerV2);
  EXPECT_EQ(operator_name(Operator::kTrainerV2), "trainer-v2");
  EXPECT_NE(usage_error([] { operator_from_name("mpi"); }).find("trainer-v2"), std::string::npos);
}

// Every training pod (v1 Master and Worker, v2 node) may checkpoint on SIGTERM before SIGKILL.
TEST(Render, TrainingPodsGetThePreemptionGracePeriod) {
  core::Config c;
  c.checkpoint.preempt_grace_s = 100.2;
  const int64_t want = static_cast<int64_t>(std::ceil(core::preempt_stop_seconds(c.checkpoint)));
  EXPECT_EQ(want, 116);
  EXPECT_EQ(training_grace_seconds(c), want);
  const auto v1 = render(c, RenderOptions{});
  const Object* pj = find(v1, "PyTorchJob", "fmnist-resnet");
  ASSERT_NE(pj, nullptr);
  for (const char* type : {"Master", "Worker"}) {
    EXPECT_EQ((*pj)["spec"]["pytorchReplicaSpecs"][type]["template"]["spec"]
                   ["terminationGracePeriodSeconds"],
              want)
        << type;
  }
  RenderOptions o;
  o.op = Operator::kTrainerV2;
  const auto v2 = render(c, o);
  const Object* rt = find(v2, "TrainingRuntime", "fmnist-resnet-runtime");
  ASSERT_NE(rt, nullptr);
  const Object& node = (*rt)["spec"]["template"]["spec"]["replicatedJobs"][0]["template"];
  EXPECT_EQ(node["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], want);
}

// The TrainJob: what runs in spec.trainer, the pod and ddpipe's exit-code contract in its own
// TrainingRuntime; MinIO, init and serving exactly as for the PyTorchJob.
TEST(TrainJob, RenderedJobAndRuntimeKeepTheExitCodeContract) {
  core::Config c;
  c.dist.max_restarts = 5;
  RenderOptions o;
  o.op = Operator::kTrainerV2;
  o.workers = 2;
  const auto objects = render(c, o);
  std::vector<std::string> kinds;
  for (const auto& x : objects) kinds.push_back(x["kind"]);
  EXPECT_EQ(kinds,
            (std::vector<std::string>{"Namespace", "ServiceAccount", "Secret", "ConfigMap",
                                      "PersistentVolumeClaim", "Deployment", "Service", "Job",
                                      "TrainingRuntime", "TrainJob", "Deployment", "Service"}));
  RenderOptions v1 = o;
  v1.op = Operator::kPyTorchJob;
  const auto v1_objects = render(c, v1);
  for (const auto& x : objects) {
    if (x["metadata"]["labels"]["app.kubernetes.io/component"] == "train") continue;
    const Object* same = find(v1_objects, x["kind"], x["metadata"]["name"]);
    ASSERT_NE(same, nullptr) << x["kind"];
    EXPECT_EQ(*same, x) << "differs from the PyTorchJob render: " << x["kind"];
  }
  const Object* tj = find(objects, "TrainJob", "fmnist-resnet");
  ASSERT_NE(tj, nullptr);
  EXPECT_EQ((*tj)["apiVersion"], kTrainerApiVersion);
  EXPECT_EQ((*tj)["spec"]["runtimeRef"]["name"], trainer_runtime_name("fmnist-resnet"));
  EXPECT_EQ((*tj)["spec"]["runtimeRef"]["kind"], "TrainingRuntime");
  const Object& trainer = (*tj)["spec"]["trainer"];
  EXPECT_EQ(trainer["numNodes"], 3);
  EXPECT_EQ(trainer["numProcPerNode"], 1);
  EXPECT_EQ(trainer["image"], o.image);
  EXPECT_EQ(trainer["command"][0], kImageBinary);
  EXPECT_EQ(env_of(trainer, "DDPIPE_RUN_ID"), "fmnist-resnet");
  EXPECT_EQ(env_of(trainer, "AWS_ACCESS_KEY_ID"), "<ref>");

  const Object* rt = find(objects, "TrainingRuntime", "fmnist-resnet-runtime");
  ASSERT_NE(rt, nullptr);
  EXPECT_TRUE((*rt)["spec"]["mlPolicy"].contains("torch"));
  const Object& jobset = (*rt)["spec"]["template"]["spec"];
  EXPECT_EQ(jobset["failurePolicy"]["maxRestarts"], 5);
  EXPECT_EQ(jobset["failurePolicy"]["rules"][0]["action"], "FailJobSet");
  EXPECT_EQ(jobset["failurePolicy"]["rules"][0]["onJobFailureReasons"][0], "PodFailurePolicy");
  const Object& rj = jobset["replicatedJobs"][0];
  EXPECT_EQ(rj["name"], kTrainerV2Job);
  EXPECT_EQ(rj["template"]["spec"]["backoffLimit"], 0);
  const Object& rule = rj["template"]["spec"]["podFailurePolicy"]["rules"][0];
  EXPECT_EQ(rule["action"], "FailJob");
  EXPECT_EQ(rule["onExitCodes"]["containerName"], kTrainerV2Container);
  EXPECT_EQ(rule["onExitCodes"]["operator"], "In");
  const Object& codes = rule["onExitCodes"]["values"];
  ASSERT_EQ(codes.size(), 127u);
  EXPECT_EQ(codes.front(), 1);
  EXPECT_EQ(codes.back(), 127);
  const Object& preempted = rj["template"]["spec"]["podFailurePolicy"]["rules"][1];
  EXPECT_EQ(preempted["action"], "Ignore");
  EXPECT_EQ(preempted["onExitCodes"]["values"],
            Object::array({core::exit_code(core::ErrorKind::kPreempted)}));
  const Object& evicted = rj["template"]["spec"]["podFailurePolicy"]["rules"][2];
  EXPECT_EQ(evicted["action"], "Ignore");
  EXPECT_EQ(evicted["onPodConditions"][0]["type"], "DisruptionTarget");
  const Object& pod = rj["template"]["spec"]["template"];
  EXPECT_EQ(pod["spec"]["restartPolicy"], "Never");
  EXPECT_EQ(pod["metadata"]["annotations"]["prometheus.io/port"], "9400");
  const Object& node = pod["spec"]["containers"][0];
  EXPECT_EQ(node["name"], kTrainerV2Container);
  EXPECT_FALSE(node.contains("image")) << "the image is the TrainJob's, stated once";
  EXPECT_EQ(node["ports"][0]["containerPort"], 9400);
}

// The torch plugin's env for the manifests of the golden file, variable by variable, in order.
TEST(TrainJob, PluginEnvMatchesTrainerV230) {
  const fs::path dir = fs::path(DDPIPE_SOURCE_DIR) / "tests/k8s/testdata";
  const auto golden =
      nlohmann::json::parse(core::read_file(dir / "trainjob_v2.3.0_expected_env.json"));
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    const std::string manifest = c["manifest"];
    std::vector<Object> objects;
    if (manifest.rfind("render:", 0) == 0) {
      RenderOptions o;
      o.op = Operator::kTrainerV2;
      objects = render(core::Config{}, o);
    } else {
      objects = parse_manifests(core::read_file(dir / manifest), manifest);
    }
    const JobPlan plan = plan_trainjob(objects, manifest);
    EXPECT_EQ(plan.world_size, c["world_size"]) << manifest;
    EXPECT_EQ(plan.name, c["job_name"]);
    ASSERT_EQ(plan.pods.size(), c["pods"].size()) << manifest;
    for (const auto& pod : plan.pods) {
      ASSERT_TRUE(c["pods"].contains(pod.name)) << pod.name;
      EnvList expected;
      for (const auto& kv : c["pods"][pod.name]["env"]) expected.emplace_back(kv[0], kv[1]);
      EXPECT_EQ(pod.operator_env, expected) << pod.name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5);
}

TEST(TrainJob, StockRuntimeIsTrainerV230s) {
  const fs::path file =
      testing::shared_dir() / "testdata/k8s/trainer-v2.3.0/runtime_torch_distributed.yaml";
  if (testing::shared_dir().empty()) GTEST_SKIP() << "../shared is absent: no upstream runtime";
  EXPECT_EQ(stock_torch_runtime(), parse_manifests(core::read_file(file), file.string())[0]);
}

// The torch plugin's calculateNumProcPerNode for numProcPerNode "auto".
TEST(TrainJob, AutoProcessesAreTheCpusOfACpuNode) {
  auto nproc = [](const std::string& resources) {
    return trainer_auto_nproc(Object::parse(R"({"resourcesPerNode":)" + resources + "}"));
  };
  EXPECT_EQ(trainer_auto_nproc(Object::object()), "auto");  // no resources: torchrun decides
  EXPECT_EQ(nproc(R"({"limits":{"cpu":"4"}})"), "4");
  EXPECT_EQ(nproc(R"({"limits":{"cpu":"4"},"requests":{"cpu":"2"}})"), "4");  // limits first
  EXPECT_EQ(nproc(R"({"requests":{"cpu":"1500m"}})"), "2");                   // rounded up
  EXPECT_EQ(nproc(R"({"limits":{"cpu":"100m"}})"), "1");                      // at least 1
  EXPECT_EQ(nproc(R"({"limits":{"memory":"4Gi"}})"), "1");                // a CPU list without cpu
  EXPECT_EQ(nproc(R"({})"), "1");                                         // no list at all
  EXPECT_EQ(nproc(R"({"limits":{"cpu":"4","nvidia.com/gpu":1}})"), "1");  // then requests: none
  EXPECT_EQ(nproc(R"({"limits":{"nvidia.com/gpu":1},"requests":{"nvidia.com/gpu":1}})"), "auto");
  EXPECT_NE(usage_error([&] { nproc(R"({"limits":{"cpu":"four"}})"); }).find("'four'"),
            std::string::npos);
}

TEST(TrainJob, RejectsWhatTheControllerOrDdpipeCannotRun) {
  auto plan = [](const std::string& spec, const std::string& more = "") {
    return plan_trainjob(
        parse_manifests("apiVersion: trainer.kubeflow.org/v1alpha1\nkind: TrainJob\n"
                        "metadata: {name: j}\nspec:\n" +
                            spec + more,
                        "j.yaml"),
        "j.yaml");
  };
  const std::string runtime =
      "---\napiVersion: trainer.kubeflow.org/v1alpha1\nkind: TrainingRuntime\n"
      "metadata: {name: rt}\nspec:\n  mlPolicy: {torch: {elasticPolicy: {maxNodes: 3}}}\n";
  EXPECT_NE(usage_error([] { plan_trainjob({}, "empty.yaml"); }).find("no TrainJob"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { plan("  runtimeRef: {name: mine}\n"); }).find("'mine'"),
            std::string::npos);
  EXPECT_NE(usage_error([&] {
              plan("  runtimeRef: {name: rt, kind: TrainingRuntime}\n", runtime);
            }).find("elasticPolicy"),
            std::string::npos);
  EXPECT_NE(usage_error([&] {
              plan("  runtimeRef: {name: torch-distributed}\n  trainer: {numNodes: 0}\n");
            }).find("numNodes"),
            std::string::npos);
  const JobPlan stock = plan("  runtimeRef: {name: torch-distributed}\n");
  ASSERT_EQ(stock.pods.size(), 1u);  // the runtime's mlPolicy.numNodes
  EXPECT_EQ(stock.pods[0].operator_env[1].second, "auto");
}

TEST(LocalPods, TrainJobNodesAsTheClusterGivesThem) {
  testing::TempDir dir;
  RenderOptions o;
  o.op = Operator::kTrainerV2;
  const auto objects = render(core::Config{}, o);
  const auto pods = local_pods(objects, "rendered", dir.path(), {"10.0.0.2", "10.0.0.3"},
                               "/bin/ddp", JobKind::kTrainJob);
  ASSERT_EQ(pods.size(), 2u);
  const LocalPod& n = pods[1];
  EXPECT_EQ(n.name, "fmnist-resnet-node-0-1");
  EXPECT_EQ(n.rank, 1);
  const fs::path root = dir / "fmnist-resnet-node-0-1";
  EXPECT_EQ(n.argv, (std::vector<std::string>{"/bin/ddp", "train", "--config",
                                              (root / "etc/ddpipe/config.yaml").string(), "--set",
                                              "train.threads=2"}));
  const EnvList expected_tail = {{"PET_NNODES", "2"},
                                 {"PET_NPROC_PER_NODE", "1"},
                                 {"PET_NODE_RANK", "1"},
                                 {"PET_MASTER_ADDR", "fmnist-resnet-node-0-0.fmnist-resnet"},
                                 {"PET_MASTER_PORT", "29500"}};
  ASSERT_GE(n.env.size(), expected_tail.size());
  EXPECT_EQ(EnvList(n.env.end() - expected_tail.size(), n.env.end()), expected_tail);
  std::map<std::string, std::string> env(n.env.begin(), n.env.end());
  EXPECT_EQ(env["HOSTNAME"], "fmnist-resnet-node-0-1");
  EXPECT_EQ(env["AWS_SECRET_ACCESS_KEY"], "ddpipe-dev-password");
  EXPECT_EQ(env["DDPIPE_RUN_ID"], "fmnist-resnet");
  EXPECT_EQ(env.count("WORLD_SIZE"), 0u);
  bool config_written = false;
  for (const auto& [path, text] : n.files)
    config_written |= path == root / "etc/ddpipe/config.yaml";
  EXPECT_TRUE(config_written);
  // The runtime must come with the TrainJob (or be the stock one).
  std::vector<Object> without_runtime;
  for (const auto& x : objects) {
    if (x["kind"] != "TrainingRuntime") without_runtime.push_back(x);
  }
  EXPECT_NE(
      usage_error([&] {
        local_pods(without_runtime, "job.yaml", dir.path(), {"a", "b"}, "x", JobKind::kTrainJob);
      }).find("TrainingRuntime 'fmnist-resnet-runtime'"),
      std::string::npos);
}

}  // namespace
}  // namespace ddpipe::k8s
