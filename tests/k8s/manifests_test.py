#!/usr/bin/env python3
"""ddpipe's Kubernetes deployment, proven without a cluster (ctest: k8s_manifests, k8s_schemas,
k8s_kustomize).

  manifests_test.py semantics|schemas|kustomize --ddpipe BUILD/apps/ddpipe/ddpipe

semantics  `ddpipe k8s render` for several configs and both operators (PyTorchJob, Trainer v2
           TrainJob) passes check_manifests.py's semantic checks, deploy/k8s/base and
           deploy/k8s/base-trainer-v2 are the renders of the default job, the ConfigMap's config loads,
           every probe path answers on a real `ddpipe serve`, the Dockerfile agrees with the
           manifests, scripts/install-deps.sh and the libraries the binary links, quick-run.sh
           --k8s explains a missing kubectl or cluster, and broken manifests are caught.
schemas    the same renders against the Kubernetes JSON schemas, the PyTorchJob CRD and the
           Trainer v2.3.0 CRDs of ../shared/testdata/k8s, strictly (unknown fields fail; exit 77
           = skipped when ../shared or python3-jsonschema is absent).
kustomize  `kubectl kustomize` builds the base and every overlay, and each build passes the
           checks (exit 77 when kubectl is absent).
"""
import argparse
import copy
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

try:
    import yaml  # noqa: F401  (Debian's python3-yaml, for check_manifests)
except ImportError:
    print("SKIP: python3-yaml is not installed (scripts/install-deps.sh installs it)")
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_manifests as cm  # noqa: E402

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKERFILE = os.path.join(SOURCE, "deploy", "docker", "Dockerfile")
SHARED_K8S = os.environ.get("DDPIPE_SHARED_DIR", os.path.join(os.path.dirname(SOURCE), "shared"))
SHARED_K8S = os.path.join(SHARED_K8S, "testdata", "k8s")
TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata")
DDPIPE = None
# The sanitizer runtimes a DDPIPE_SANITIZE build links (scripts/sanitize.sh; --sanitized). The
# image builds without sanitizers, so its binary never needs them.
SANITIZER_RUNTIMES = set()


def crds():
    """Every Kubeflow CRD the renders use, from ../shared."""
    trainer = os.path.join(SHARED_K8S, "trainer-v2.3.0")
    return [os.path.join(SHARED_K8S, "kubeflow.org_pytorchjobs.yaml")] + [
        os.path.join(trainer, f"trainer.kubeflow.org_{plural}.yaml")
        for plural in ("trainjobs", "trainingruntimes", "clustertrainingruntimes")]

# (name, ddpipe k8s render arguments): the configs a user is likely to render.
RENDERS = [
    ("default", ["--config", "configs/default.yaml"]),
    ("seed-cifar10", ["--config", "configs/seed-cifar10-resnet18.yaml", "--download",
                      "--workers", "3", "--image", "registry.example.com/ml/ddpipe:0.1.0"]),
    ("synthetic-bench", ["--config", "configs/synthetic-bench.yaml", "--workers", "0"]),
    ("tiny", ["--set", "data.format=synthetic", "--set", "name=tiny", "--set", "data.name=tiny-synth",
              "--set", "train.threads=1", "--set", "dist.max_restarts=5", "--workers", "7",
              "--job-name", "tiny-nightly"]),
]


# Each render above for both operators.
OPERATORS = ["pytorchjob", "trainer-v2"]


def render_all():
    for name, args in RENDERS:
        for op in OPERATORS:
            yield f"{name} ({op})", args + ["--operator", op], op


def render(args):
    r = subprocess.run([DDPIPE, "k8s", "render"] + args, cwd=SOURCE, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"ddpipe k8s render {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def find(objects, kind, name=None):
    return next(o for o in objects if o["kind"] == kind and (name is None or cm.name_of(o) == name))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Semantics(unittest.TestCase):
    def setUp(self):
        self.checker = cm.Checker(dockerfile=DOCKERFILE)

    def test_every_render_passes(self):
        for name, args, op in render_all():
            with self.subTest(config=name):
                objects = cm.load_stream(render(args))
                self.assertEqual(self.checker.check_semantics(objects), [])
                workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
                if op == "trainer-v2":
                    self.assertEqual(find(objects, "TrainJob")["spec"]["trainer"]["numNodes"], workers + 1)
                    self.assertEqual([o for o in objects if o["kind"] == "PyTorchJob"], [])
                    continue
                replicas = find(objects, "PyTorchJob")["spec"]["pytorchReplicaSpecs"]
                self.assertEqual(replicas.get("Worker", {}).get("replicas", 0), workers)

    def test_bases_are_the_renders_of_the_default_config(self):
        for folder, operator in (("base", []), ("base-trainer-v2", ["--operator", "trainer-v2"])):
            path = f"deploy/k8s/{folder}/ddpipe.yaml"
            with self.subTest(base=folder), open(os.path.join(SOURCE, path)) as f:
                base = f.read()
                command = base.splitlines()[0].removeprefix("# Rendered by: ddpipe k8s render ").split()
                # The default job, as `ddpipe run` (./quick-run.sh) runs it: no --config.
                self.assertEqual(command, operator + ["--workers", "1", "--image", "ddpipe:local"])
                self.assertEqual(render(command), base,
                                 f"{path} is out of date: regenerate it with\n  "
                                 "build/apps/ddpipe/ddpipe k8s render " + " ".join(command) +
                                 f" > {path}")

    def test_configmap_config_loads_and_keeps_the_job(self):
        def config_args(args):  # render's own options (--workers, --image, --job-name) are not config
            out, skip = [], False
            for a in args:
                if not skip and a in ("--workers", "--image", "--job-name"):
                    skip = True
                    continue
                if not skip:
                    out.append(a)
                skip = False
            return out

        for name, args in RENDERS:
            with self.subTest(config=name), tempfile.TemporaryDirectory() as tmp:
                objects = cm.load_stream(render(args))
                config_map = find(objects, "ConfigMap")
                path = os.path.join(tmp, "config.yaml")
                with open(path, "w") as f:
                    f.write(config_map["data"]["config.yaml"])
                shown = subprocess.run([DDPIPE, "config", "show", "--config", path],
                                       capture_output=True, text=True)
                self.assertEqual(shown.returncode, 0, shown.stderr)
                local = subprocess.run([DDPIPE, "config", "show"] + config_args(args), cwd=SOURCE,
                                       capture_output=True, text=True)
                self.assertEqual(local.returncode, 0, local.stderr)
                # The store moves to MinIO, credentials to the pods' environment, and the ranks
                # serve /metrics on 9400 (the port the PyTorchJob declares).
                self.assertIn("metrics:\n  port: 9400\n", shown.stdout)
                drop = re.compile(r"^(store|  endpoint|  access_key_id):")
                keep = lambda text: [l for l in re.sub(r"metrics:\n  port: \d+\n", "", text)  # noqa: E731
                                     .splitlines() if not drop.match(l)]
                self.assertEqual(keep(shown.stdout), keep(local.stdout),
                                 "the cluster's config differs from the local one beyond the store "
                                 "and the metrics port")

    def test_probes_answer_on_a_real_server(self):
        objects = cm.load_stream(render([]))
        serve = find(objects, "Deployment", "fmnist-resnet-serve")
        container = serve["spec"]["template"]["spec"]["containers"][0]
        argv = container["args"]
        self.assertEqual(argv[0], "serve")
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            # The pod's arguments with a free port and an empty local store (no model yet).
            server = subprocess.Popen(
                [DDPIPE] + [a for a in argv if a != "--config" and not a.startswith("/etc/")] +
                ["--port", str(port), "--host", "127.0.0.1", "--store", os.path.join(tmp, "store")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                codes = {}
                for probe in ("livenessProbe", "readinessProbe"):
                    url = f"http://127.0.0.1:{port}{container[probe]['httpGet']['path']}"
                    for _ in range(100):
                        try:
                            codes[probe] = urllib.request.urlopen(url, timeout=2).status
                            break
                        except urllib.error.HTTPError as e:
                            codes[probe] = e.code
                            break
                        except OSError:
                            time.sleep(0.1)
            finally:
                server.terminate()
                server.wait(timeout=30)
        # Alive without a model (training may still run), not ready until one is loaded.
        self.assertEqual(codes, {"livenessProbe": 200, "readinessProbe": 503})

    def test_dockerfile(self):
        df = cm.Dockerfile(DOCKERFILE)
        build, runtime = df.stages[0], df.runtime
        self.assertTrue(build["from"].startswith("debian:bookworm"))
        self.assertTrue(runtime["from"].startswith("debian:bookworm"))
        self.assertEqual(runtime["entrypoint"], ["/usr/local/bin/ddpipe"])
        self.assertIn(("build", ["/usr/local/bin/ddpipe"], "/usr/local/bin/ddpipe"), runtime["copies"])
        self.assertNotIn(df.uid(), (None, 0), "the image must run as a numeric non-root USER")
        self.assertEqual(runtime["env"].get("HOME"), runtime["workdir"])
        self.assertEqual([p for p in runtime["packages"] if p.endswith("-dev")], [])
        # Build packages are the project's (scripts/install-deps.sh): its build stage runs it.
        with open(DOCKERFILE) as f:
            build_stage = f.read().split("\nFROM ")[1]
        self.assertRegex(build_stage, r"COPY scripts/install-deps.sh (\S+)\nRUN \1")
        with open(os.path.join(SOURCE, "scripts/install-deps.sh")) as f:
            block = re.search(r"PACKAGES=\((.*?)\n\)", f.read(), re.S).group(1)
        declared = set(re.sub(r"#[^\n]*", "", block).split())
        self.assertEqual(sorted(set(build["packages"]) - declared - {"ca-certificates"}), [])
        # Every library the binary links comes from a runtime package.
        needed = re.findall(r"\(NEEDED\).*\[(.+)\]", subprocess.run(
            ["readelf", "-d", DDPIPE], capture_output=True, text=True, check=True).stdout)
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
            ["ldd", DDPIPE], capture_output=True, text=True, check=True).stdout, re.M))
        base = {"libc6", "libstdc++6", "libgcc-s1"}  # in debian:bookworm-slim
        for lib in needed:
            if lib.split(".so")[0] in SANITIZER_RUNTIMES:
                continue
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(paths[lib])],
                                   capture_output=True, text=True)
            if owner.returncode != 0:
                owner = subprocess.run(["dpkg", "-S", paths[lib]], capture_output=True, text=True)
            package = owner.stdout.split(":")[0]
            self.assertTrue(package in runtime["packages"] or package in base,
                            f"{lib} comes from {package}, which the runtime image does not install")

    def test_quick_run_k8s_explains_what_is_missing(self):
        with tempfile.TemporaryDirectory() as tmp:
            for tool in ("bash", "dirname"):  # a PATH with nothing else, kubectl least of all
                os.symlink(shutil.which(tool), os.path.join(tmp, tool))
            env = dict(os.environ, PATH=tmp)
            quick_run = [os.path.join(SOURCE, "quick-run.sh"), "--k8s"]
            r = subprocess.run(quick_run, env=env, capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("kubectl is not installed", r.stderr)
            fake = os.path.join(tmp, "kubectl")  # a kubectl whose cluster is unreachable
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho 'The connection to the server localhost:8080 was refused' >&2\n"
                        "exit 1\n")
            os.chmod(fake, 0o755)
            r = subprocess.run(quick_run, env=env, capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("no Kubernetes cluster is reachable", r.stderr)
            self.assertIn("minikube start", r.stderr)
            with open(fake, "w") as f:  # a cluster without the training operator
                f.write('#!/bin/sh\ncase "$*" in *crd*) exit 1;; esac\nexit 0\n')
            r = subprocess.run(quick_run, env=env, capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("the Kubeflow training operator is not installed", r.stderr)
            self.assertIn("standalone?ref=v1.8.1", r.stderr)  # either operator, how to install it
            self.assertIn("trainer.git/manifests/overlays/manager?ref=v2.3.0", r.stderr)

    def quick_run_with_fake_kubectl(self, operator):
        """./quick-run.sh --k8s against a fake kubectl: a cluster with `operator`'s CRD where
        everything succeeds. Returns (what kubectl was asked, the run)."""
        v1 = operator == "pytorchjob"
        base = "base" if v1 else "base-trainer-v2"
        first = "fmnist-resnet-master-0" if v1 else "fmnist-resnet-node-0-0-x7k2p"
        kind = "pytorchjob" if v1 else "trainjob"
        with tempfile.TemporaryDirectory() as tmp:
            calls = os.path.join(tmp, "calls")
            fake = os.path.join(tmp, "kubectl")
            with open(fake, "w") as f:
                f.write(f"""#!/bin/bash
echo "$*" >>{calls}
case "$*" in
  "get crd pytorchjobs.kubeflow.org") [[ {int(v1)} == 1 ]] || exit 1 ;;
  "kustomize "*) cat {SOURCE}/deploy/k8s/{base}/ddpipe.yaml ;;
  "config current-context") echo kind-test ;;
  "get namespace "*) exit 1 ;;
  *"apply -f "*) echo "applied $5" ;;
  *"get job -l "*) echo fmnist-resnet-init ;;
  *"get job fmnist-resnet-init "*) echo "Complete " ;;
  *"get {kind}s "*) echo fmnist-resnet ;;
  *"get pods -l jobset.sigs.k8s.io/jobset-name=fmnist-resnet,batch.kubernetes.io/job-completion-index=0 "*) echo {first} ;;
  *"get pod {first} "*) echo Running ;;
  *"get {kind} fmnist-resnet -o jsonpath={{range"*) [[ -f {tmp}/followed ]] && echo "Succeeded " ;;
  *"logs -f {first}"*) touch {tmp}/followed
    echo '{{"final":{{}},"metrics":"metrics/fmnist-resnet/metrics_v1.json","model":"fmnist-resnet","version":"model_v1"}}' ;;
  *"get configmap "*) echo "# a comment"; echo "store: s3://ddpipe" ;;
esac
exit 0
""")
            os.chmod(fake, 0o755)
            env = dict(os.environ, PATH=tmp + ":/usr/bin:/bin")
            r = subprocess.run([os.path.join(SOURCE, "quick-run.sh"), "--k8s"], env=env,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(calls) as f:
                return f.read(), r

    def test_quick_run_k8s_runs_the_phases_in_order(self):
        for operator, overlay, first, kind in (
                ("pytorchjob", "overlays/local", "fmnist-resnet-master-0", "PyTorchJob"),
                ("trainer-v2", "overlays/trainer-v2", "fmnist-resnet-node-0-0-x7k2p", "TrainJob")):
            with self.subTest(operator=operator):
                asked, r = self.quick_run_with_fake_kubectl(operator)
                self.assertIn(f"operator: {operator}", r.stdout)
                self.assertIn(f"kustomize deploy/k8s/{overlay}", asked)
                applied = re.findall(r"apply -f \S+ -l app.kubernetes.io/component in \((.*)\)", asked)
                self.assertEqual(applied, ["config,storage", "init", "train", "serve"])
                order = [asked.index(s) for s in ("rollout status deployment/minio",
                                                  "get job fmnist-resnet-init", f"logs -f {first}",
                                                  "rollout status deployment/fmnist-resnet-serve")]
                self.assertEqual(order, sorted(order), asked)
                self.assertIn(f"{kind} fmnist-resnet succeeded", r.stdout)
                self.assertIn("Model version: s3://ddpipe/models/fmnist-resnet/model_v1/", r.stdout)
                self.assertIn("Metrics:       s3://ddpipe/metrics/fmnist-resnet/metrics_v1.json",
                              r.stdout)

    def test_broken_manifests_are_caught(self):
        objects = cm.load_stream(render(["--workers", "2"]))

        def problems(mutate):
            broken = copy.deepcopy(objects)
            mutate(broken)
            return "\n".join(self.checker.check_semantics(broken))

        def pytorch(o, rtype="Master"):
            spec = find(o, "PyTorchJob")["spec"]["pytorchReplicaSpecs"][rtype]
            return spec["template"]["spec"]["containers"][0]

        def serve(o):
            return find(o, "Deployment", "fmnist-resnet-serve")["spec"]["template"]["spec"]["containers"][0]

        cases = {
            "Secret minio-credentials does not exist":
                lambda o: o.remove(find(o, "Secret")),
            "holds a literal credential":
                lambda o: pytorch(o)["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}),
            "contains the value of a Secret key literally":
                lambda o: find(o, "ConfigMap")["data"].update(leak="ddpipe-dev-password"),
            "but the operator sets WORLD_SIZE=6":
                lambda o: find(o, "PyTorchJob")["spec"].update(nprocPerNode="2"),
            "start different numbers of ranks":
                lambda o: pytorch(o, "Worker").update(args=["launch", "--nproc-per-node", "2"]),
            "overrides the operator's fmnist-resnet-master-0":
                lambda o: pytorch(o)["env"].append({"name": "MASTER_ADDR", "value": "localhost"}),
            "DDPIPE_RUN_ID must be the job name":
                lambda o: pytorch(o, "Worker").update(env=pytorch(o, "Worker")["env"][1:]),
            "restartPolicy 'Never'":
                lambda o: find(o, "PyTorchJob")["spec"]["pytorchReplicaSpecs"]["Worker"].update(
                    restartPolicy="Never"),
            "is not a DNS label":
                lambda o: find(o, "PyTorchJob")["metadata"].update(name="x" * 60),
            "is not the image's entrypoint":
                lambda o: pytorch(o).update(command=["/usr/bin/ddpipe"]),
            "is not the image's USER":
                lambda o: find(o, "Job")["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0),
            "is no container port":
                lambda o: serve(o)["readinessProbe"]["httpGet"].update(port="metrics"),
            "but the server listens on --port 8080":
                lambda o: serve(o)["ports"][0].update(containerPort=9090),
            "matches no pod template":
                lambda o: find(o, "Service", "fmnist-resnet-serve")["spec"]["selector"].update(
                    {"app.kubernetes.io/component": "server"}),
            "targetPort 'api' is no container port":
                lambda o: find(o, "Deployment", "minio")["spec"]["template"]["spec"]["containers"][0][
                    "ports"][0].update(name="s3"),
            "has no key config.yaml":
                lambda o: find(o, "ConfigMap").update(data={"ddpipe.yaml": "{}"}),
            "does not select its pod template":
                lambda o: find(o, "Deployment", "minio")["spec"]["selector"]["matchLabels"].update(
                    {"app.kubernetes.io/name": "minlo"}),
            "PersistentVolumeClaim minio-data does not exist":
                lambda o: o.remove(find(o, "PersistentVolumeClaim")),
            "without a /tmp volume":
                lambda o: serve(o).update(volumeMounts=serve(o)["volumeMounts"][:2]),
            "is not the stream's":
                lambda o: find(o, "Service", "minio")["metadata"].update(namespace="default"),
            "is not a MinIO health endpoint":
                lambda o: find(o, "Deployment", "minio")["spec"]["template"]["spec"]["containers"][0][
                    "livenessProbe"]["httpGet"].update(path="/healthz"),
        }
        for expected, mutate in cases.items():
            with self.subTest(expected=expected):
                self.assertIn(expected, problems(mutate))

    def test_broken_trainjobs_are_caught(self):
        objects = cm.load_stream(render(["--operator", "trainer-v2", "--workers", "2"]))

        def problems(mutate):
            broken = copy.deepcopy(objects)
            mutate(broken)
            return "\n".join(self.checker.check_semantics(broken))

        trainer = lambda o: find(o, "TrainJob")["spec"]["trainer"]  # noqa: E731
        node_job = lambda o: find(o, "TrainingRuntime")["spec"]["template"]["spec"][  # noqa: E731
            "replicatedJobs"][0]["template"]["spec"]
        jobset = lambda o: find(o, "TrainingRuntime")["spec"]["template"]["spec"]  # noqa: E731
        cases = {
            "which is not in the stream": lambda o: o.remove(find(o, "TrainingRuntime")),
            "must FailJob on exit codes 1-127": lambda o: node_job(o)["podFailurePolicy"]["rules"][0][
                "onExitCodes"].update(values=[1, 2]),
            "must Ignore exit code 143": lambda o: node_job(o)["podFailurePolicy"]["rules"].pop(1),
            "and the DisruptionTarget condition": lambda o: node_job(o)["podFailurePolicy"][
                "rules"].pop(2),
            "need restartPolicy Never": lambda o: node_job(o)["template"]["spec"].update(
                restartPolicy="OnFailure"),
            "must FailJobSet on reason PodFailurePolicy": lambda o: jobset(o)["failurePolicy"].pop("rules"),
            "would not restart the job": lambda o: jobset(o)["failurePolicy"].update(maxRestarts=0),
            "no terminationGracePeriodSeconds": lambda o: node_job(o)["template"]["spec"].pop(
                "terminationGracePeriodSeconds"),
            "DDPIPE_RUN_ID must be the job name": lambda o: trainer(o).update(env=trainer(o)["env"][1:]),
            "env PET_NODE_RANK is the torch plugin's": lambda o: trainer(o)["env"].append(
                {"name": "PET_NODE_RANK", "value": "0"}),
            "each node starts 1 ranks but numProcPerNode is 2": lambda o: trainer(o).update(numProcPerNode=2),
            "`ddpipe train` is one rank": lambda o: trainer(o).pop("numProcPerNode"),
            "holds a literal credential": lambda o: trainer(o)["env"].append(
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}),
            "is not the image's entrypoint": lambda o: trainer(o).update(command=["/usr/bin/ddpipe"]),
            "is not a DNS label": lambda o: find(o, "TrainJob")["metadata"].update(name="x" * 60),
        }
        for expected, mutate in cases.items():
            with self.subTest(expected=expected):
                self.assertIn(expected, problems(mutate))
        # The PyTorchJob's pods need the grace period too.
        v1 = cm.load_stream(render([]))
        find(v1, "PyTorchJob")["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"].pop(
            "terminationGracePeriodSeconds")
        self.assertIn("PyTorchJob/fmnist-resnet/Worker: no terminationGracePeriodSeconds",
                      "\n".join(self.checker.check_semantics(v1)))


class Schemas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.checker = cm.Checker(os.path.join(SHARED_K8S, "schemas"), crds())

    def test_every_render_is_valid(self):
        for name, args, _ in render_all():
            with self.subTest(config=name):
                objects = cm.load_stream(render(args))
                self.assertEqual(self.checker.check_schemas(objects), [])

    def test_upstream_examples_pass_the_crd(self):
        # The conversion of the CRDs' OpenAPI schemas accepts what the operators' authors wrote
        # (the stock torch-distributed runtime) and the TrainJob of the golden env.
        for file in ("examples/pytorch_job_mnist_gloo.yaml", "examples/elastic_echo.yaml",
                     "trainer-v2.3.0/runtime_torch_distributed.yaml",
                     os.path.join(TESTDATA, "trainjob_torch_distributed.yaml")):
            with open(os.path.join(SHARED_K8S, file)) as f:
                objects = cm.load_stream(f.read())
                self.assertEqual(self.checker.check_schemas(objects), [], file)
                if "trainer" in file or "trainjob" in file:  # and the TrainJob checks too
                    self.assertEqual(self.checker.check_semantics(objects), [], file)

    def test_unknown_and_mistyped_trainer_v2_fields_fail(self):
        objects = cm.load_stream(render(["--operator", "trainer-v2"]))

        def problems(mutate):
            broken = copy.deepcopy(objects)
            mutate(broken)
            return "\n".join(self.checker.check_schemas(broken))

        def rename(d, old, new):
            d[new] = d.pop(old)

        trainer = lambda o: find(o, "TrainJob")["spec"]["trainer"]  # noqa: E731
        node_job = lambda o: find(o, "TrainingRuntime")["spec"]["template"]["spec"][  # noqa: E731
            "replicatedJobs"][0]["template"]["spec"]
        self.assertEqual(problems(lambda o: None), "")
        cases = {
            "'numnodes' was unexpected": lambda o: rename(trainer(o), "numNodes", "numnodes"),
            "'replicas' was unexpected": lambda o: trainer(o).update(replicas=2),
            "'two' is not of type 'integer'": lambda o: trainer(o).update(numNodes="two"),
            "'terminationGracePeriod' was unexpected": lambda o: rename(
                node_job(o)["template"]["spec"], "terminationGracePeriodSeconds", "terminationGracePeriod"),
            "'onExitCode' was unexpected": lambda o: rename(
                node_job(o)["podFailurePolicy"]["rules"][0], "onExitCodes", "onExitCode"),
            "'Restart' is not one of": lambda o: find(o, "TrainingRuntime")["spec"]["template"]["spec"][
                "failurePolicy"]["rules"][0].update(action="Restart"),
            "'runtime' was unexpected": lambda o: find(o, "TrainJob")["spec"].update(runtime="x"),
            "'lables' was unexpected": lambda o: rename(find(o, "TrainJob")["metadata"], "labels", "lables"),
        }
        for expected, mutate in cases.items():
            with self.subTest(expected=expected):
                self.assertIn(expected, problems(mutate))

    def test_misspelled_and_mistyped_fields_fail(self):
        objects = cm.load_stream(render([]))

        def problems(mutate):
            broken = copy.deepcopy(objects)
            mutate(broken)
            return "\n".join(self.checker.check_schemas(broken))

        def rename(d, old, new):
            d[new] = d.pop(old)

        master = lambda o: find(o, "PyTorchJob")["spec"]["pytorchReplicaSpecs"]["Master"]  # noqa: E731
        cases = {
            "'containerport' was unexpected": lambda o: rename(
                find(o, "Deployment", "minio")["spec"]["template"]["spec"]["containers"][0]["ports"][0],
                "containerPort", "containerport"),
            "'restartpolicy' was unexpected": lambda o: rename(master(o), "restartPolicy", "restartpolicy"),
            "'envs' was unexpected": lambda o: rename(
                master(o)["template"]["spec"]["containers"][0], "env", "envs"),
            "'two' is not of type 'integer'": lambda o: master(o).update(replicas="two"),
            "'lables' was unexpected": lambda o: rename(find(o, "Service", "minio")["metadata"],
                                                         "labels", "lables"),
            "'accesModes' was unexpected": lambda o: rename(find(o, "PersistentVolumeClaim")["spec"],
                                                             "accessModes", "accesModes"),
            "no schema for v1 Pod": lambda o: o.append({"apiVersion": "v1", "kind": "Pod",
                                                        "metadata": {"name": "x"}}),
        }
        for expected, mutate in cases.items():
            with self.subTest(expected=expected):
                self.assertIn(expected, problems(mutate))


class Kustomize(unittest.TestCase):
    def build(self, path):
        r = subprocess.run(["kubectl", "kustomize", os.path.join(SOURCE, path)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f"kubectl kustomize {path}:\n{r.stderr}")
        return cm.load_stream(r.stdout)

    def check(self, objects, external=()):
        schemas = os.path.isdir(SHARED_K8S)
        checker = cm.Checker(os.path.join(SHARED_K8S, "schemas") if schemas else None,
                             crds() if schemas else None, DOCKERFILE, external)
        self.assertEqual(checker.check(objects), [])
        if not schemas:
            print("note: ../shared is absent: overlays checked without the Kubernetes schemas")

    def test_base(self):
        self.check(self.build("deploy/k8s/base"))

    def test_local_overlay(self):
        objects = self.build("deploy/k8s/overlays/local")
        self.check(objects)
        for rtype in ("Master", "Worker"):
            c = find(objects, "PyTorchJob")["spec"]["pytorchReplicaSpecs"][rtype]["template"]["spec"][
                "containers"][0]
            self.assertEqual(c["resources"]["limits"]["cpu"], "1")
            self.assertIn("train.threads=1", c["args"])
        self.assertEqual(find(objects, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"], "2Gi")

    def test_trainer_v2_base_and_overlay(self):
        self.check(self.build("deploy/k8s/base-trainer-v2"))
        objects = self.build("deploy/k8s/overlays/trainer-v2")
        self.check(objects)
        kinds = [o["kind"] for o in objects]
        self.assertNotIn("PyTorchJob", kinds)
        self.assertLess(kinds.index("TrainingRuntime"), kinds.index("TrainJob"),
                        "the runtime must be applied before the TrainJob that references it")
        trainer = find(objects, "TrainJob")["spec"]["trainer"]
        self.assertEqual(trainer["resourcesPerNode"]["limits"]["cpu"], "1")
        self.assertIn("train.threads=1", trainer["args"])
        # Everything else is sized as in the local overlay (components/minikube).
        local = {(o["kind"], cm.name_of(o)): o for o in self.build("deploy/k8s/overlays/local")}
        for o in objects:
            if o["metadata"]["labels"].get("app.kubernetes.io/component") != "train":
                self.assertEqual(o, local[(o["kind"], cm.name_of(o))], cm.where(o))

    def test_production_overlay(self):
        objects = self.build("deploy/k8s/overlays/production")
        self.check(objects, external=["minio-credentials"])
        self.assertEqual([o for o in objects if o["kind"] == "Secret"], [],
                         "production must not ship development credentials")
        job = find(objects, "PyTorchJob")["spec"]["pytorchReplicaSpecs"]
        self.assertEqual(job["Worker"]["replicas"], 3)
        for rtype in ("Master", "Worker"):
            c = job[rtype]["template"]["spec"]["containers"][0]
            self.assertEqual(c["image"], "registry.example.com/ml/ddpipe:0.1.0")
            self.assertIn(f"train.threads={c['resources']['limits']['cpu']}", c["args"])
        self.assertEqual(find(objects, "Deployment", "fmnist-resnet-serve")["spec"]["replicas"], 2)


def main():
    global DDPIPE
    parser = argparse.ArgumentParser()
    parser.add_argument("group", choices=["semantics", "schemas", "kustomize"])
    parser.add_argument("--ddpipe", required=True)
    parser.add_argument("--sanitized", action="store_true",
                        help="the binary is a sanitizer build: its sanitizer runtimes are allowed")
    args = parser.parse_args()
    DDPIPE = os.path.abspath(args.ddpipe)
    if args.sanitized:
        SANITIZER_RUNTIMES.update({"libasan", "libubsan", "libtsan", "liblsan"})
    if args.group == "schemas":
        if not os.path.isdir(SHARED_K8S):
            print(f"SKIP: {SHARED_K8S} is absent (the Kubernetes schemas and the Kubeflow CRD "
                  "live in ../shared beside the checkout)")
            return 77
        try:
            import jsonschema  # noqa: F401
        except ImportError:
            print("SKIP: python3-jsonschema is not installed (scripts/install-deps.sh installs it)")
            return 77
    if args.group == "kustomize" and shutil.which("kubectl") is None:
        print("SKIP: kubectl is not installed (https://kubernetes.io/docs/tasks/tools/)")
        return 77
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(
        {"semantics": Semantics, "schemas": Schemas, "kustomize": Kustomize}[args.group])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
