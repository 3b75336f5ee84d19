// ddpipe::k8s without a cluster: YAML streams, rendering, the operator's pod environment (against
// golden data derived from the training operator v1.8.1) and local pods.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ddpipe::k8s
