#!/usr/bin/env python3
"""Checks ddpipe's Kubernetes manifests without a cluster.

Structure: every object against its schema, strictly (a misspelled field fails): core kinds
against the standalone-strict JSON schemas of Kubernetes 1.32, the PyTorchJob, TrainJob,
TrainingRuntime and ClusterTrainingRuntime against the OpenAPI schemas of their Kubeflow CRDs
(made strict the way `kubectl apply --validate=strict` is; each CRD embeds the full pod
template), and the metadata of those against Kubernetes' ObjectMeta.

Semantics a schema cannot see: namespaces; selectors that select; ports and probes that point at
declared container ports; every Secret, ConfigMap, PVC and ServiceAccount referenced exists
(with the key); no credential literal outside Secrets; the PyTorchJob's ranks add up to the
WORLD_SIZE the operator sets, its pod Service names (MASTER_ADDR = <job>-master-0) are valid and
not overridden, DDPIPE_RUN_ID is the job name, --config points into a mounted ConfigMap key,
every training pod has a terminationGracePeriodSeconds (ranks checkpoint on SIGTERM); a TrainJob's
runtime is in the stream (or is the stock torch-distributed), its container `node` (with
spec.trainer applied) is checked like any pod, exit codes 1-127 fail the job and 128+ restart it
(podFailurePolicy + failurePolicy), its ranks add up; and with --dockerfile, every ddpipe
container runs the image's entrypoint as the image's user.

Usage: check_manifests.py [--schemas DIR] [--crd FILE]... [--dockerfile FILE]
                          [--external-secret NAME]... FILE...   ("-" reads stdin)
Exit code 0 when every check passes, 1 otherwise (each problem on one line).
"""
import argparse
import base64
import json
import os
import re
import shlex
import sys

import yaml

SCHEMA_FILES = {
    ("v1", "Namespace"): "namespace-v1.json",
    ("v1", "Service"): "service-v1.json",
    ("v1", "ConfigMap"): "configmap-v1.json",
    ("v1", "Secret"): "secret-v1.json",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaim-v1.json",
    ("v1", "ServiceAccount"): "serviceaccount-v1.json",
    ("apps/v1", "Deployment"): "deployment-apps-v1.json",
    ("batch/v1", "Job"): "job-batch-v1.json",
}
MINIO_HEALTH = {"/minio/health/live", "/minio/health/ready", "/minio/health/cluster"}
CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|ROOT_USER|CREDENTIAL", re.I)
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
OPERATOR_PORT = 23456  # the training operator's default MASTER_PORT
TRAINER_API = "trainer.kubeflow.org/v1alpha1"
RUNTIME_KINDS = ("TrainingRuntime", "ClusterTrainingRuntime")
PERMANENT_EXIT_CODES = list(range(1, 128))  # ddpipe: 1-127 permanent, 128+ retryable
PREEMPTED_EXIT_CODE = 143  # core::ErrorKind::kPreempted: stopped at a checkpoint after SIGTERM
PLUGIN_ENV = ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR",
              "PET_MASTER_PORT")  # Trainer v2's torch plugin sets these


def load_stream(text):
    return [d for d in yaml.safe_load_all(text) if d]


def name_of(obj):
    return obj.get("metadata", {}).get("name", "?")


def where(obj):
    return f"{obj.get('kind', '?')}/{name_of(obj)}"


def image_repo(image):
    """'registry:5000/ml/ddpipe:0.1@sha256:..' -> 'ddpipe'."""
    last = image.split("@")[0].rsplit("/", 1)[-1]
    return last.split(":")[0]


def crd_to_draft7(node):
    """The CRD's OpenAPI v3 schema as a strict JSON Schema (draft 7)."""
    if isinstance(node, list):
        return [crd_to_draft7(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("description", "format", "nullable"):
            continue
        if key == "properties":
            out[key] = {p: crd_to_draft7(s) for p, s in value.items()}
        else:
            out[key] = crd_to_draft7(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


class Dockerfile:
    """The facts of a Dockerfile that manifests depend on, per stage."""

    def __init__(self, path):
        text = re.sub(r"\\\n", " ", open(path).read())
        self.stages = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            word, rest = word.upper(), rest.strip()
            if word == "FROM":
                parts = rest.split()
                self.stages.append({"from": parts[0], "name": parts[2] if len(parts) > 2 else "",
                                    "packages": [], "copies": [], "env": {}, "user": None,
                                    "workdir": None, "entrypoint": None})
                continue
            stage = self.stages[-1]
            if word == "RUN" and "apt-get install" in rest:
                for command in rest.split("&&"):
                    tokens = command.split()
                    if "install" in tokens and "apt-get" in tokens:
                        stage["packages"] += [t for t in tokens[tokens.index("install") + 1:]
                                              if not t.startswith("-")]
            elif word == "COPY":
                tokens = rest.split()
                source = next((t.split("=", 1)[1] for t in tokens if t.startswith("--from=")), "")
                paths = [t for t in tokens if not t.startswith("--")]
                stage["copies"].append((source, paths[:-1], paths[-1]))
            elif word == "ENV":
                for item in shlex.split(rest):
                    key, _, value = item.partition("=")
                    stage["env"][key] = value
            elif word == "USER":
                stage["user"] = rest
            elif word == "WORKDIR":
                stage["workdir"] = rest
            elif word == "ENTRYPOINT":
                stage["entrypoint"] = json.loads(rest)

    @property
    def runtime(self):
        return self.stages[-1]

    def uid(self):
        user = (self.runtime["user"] or "0").split(":")[0]
        return int(user) if user.isdigit() else None


def pod_templates(obj, runtimes=None):
    """(label, pod template) of every workload; a TrainJob's is its runtime's `node` pod with
    spec.trainer applied (`runtimes`: (kind, name) -> runtime)."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
        yield where(obj), spec.get("template") or {}
    elif kind == "PyTorchJob":
        for rtype, replica in (spec.get("pytorchReplicaSpecs") or {}).items():
            yield f"{where(obj)}/{rtype}", replica.get("template") or {}
    elif kind == "TrainJob":
        runtime = (runtimes or {}).get(runtime_key(obj))
        if runtime is not None:
            yield f"{where(obj)}/node", trainjob_pod(obj, runtime)


def runtime_key(trainjob):
    ref = (trainjob.get("spec") or {}).get("runtimeRef") or {}
    return ref.get("kind", "ClusterTrainingRuntime"), ref.get("name")


def node_job(runtime):
    """The runtime's replicated Job `node` (its batch Job template), or None."""
    jobs = (((runtime.get("spec") or {}).get("template") or {}).get("spec") or {}).get("replicatedJobs")
    return next((rj.get("template") or {} for rj in jobs or [] if rj.get("name") == "node"), None)


def trainjob_pod(trainjob, runtime):
    """The pod template the Trainer makes: the runtime's, with spec.trainer applied to `node`."""
    template = json.loads(json.dumps(((node_job(runtime) or {}).get("spec") or {}).get("template") or {}))
    trainer = (trainjob.get("spec") or {}).get("trainer") or {}
    for c in (template.get("spec") or {}).get("containers") or []:
        if c.get("name") != "node":
            continue
        for key in ("image", "command", "args"):
            if key in trainer:
                c[key] = trainer[key]
        if "resourcesPerNode" in trainer:
            c["resources"] = trainer["resourcesPerNode"]
        env = {e["name"]: e for e in c.get("env") or []}
        env.update({e["name"]: e for e in trainer.get("env") or []})
        if env:
            c["env"] = list(env.values())
    return template


def containers_of(pod_spec):
    return (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])


def argv_of(container, entrypoint):
    return list(container.get("command") or entrypoint or []) + list(container.get("args") or [])


def option(argv, name):
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


class Checker:
    def __init__(self, schemas_dir=None, crd=None, dockerfile=None, external_secrets=()):
        self.validators = {}
        self.custom_kinds = set()
        if schemas_dir or crd:
            import jsonschema  # Debian's python3-jsonschema; only needed for schemas
            self.jsonschema = jsonschema
        if schemas_dir:
            for key, file in SCHEMA_FILES.items():
                with open(os.path.join(schemas_dir, file)) as f:
                    self.validators[key] = jsonschema.Draft7Validator(json.load(f))
            # ObjectMeta, for the CRD, whose schema leaves metadata open.
            with open(os.path.join(schemas_dir, SCHEMA_FILES[("v1", "ConfigMap")])) as f:
                self.object_meta = jsonschema.Draft7Validator(json.load(f)["properties"]["metadata"])
        for path in ([crd] if isinstance(crd, str) else crd or []):
            with open(path) as f:
                definition = yaml.safe_load(f)
            for version in definition["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                key = (f"{definition['spec']['group']}/{version['name']}",
                       definition["spec"]["names"]["kind"])
                self.validators[key] = jsonschema.Draft7Validator(
                    crd_to_draft7(version["schema"]["openAPIV3Schema"]))
                self.custom_kinds.add(key)
        self.dockerfile = Dockerfile(dockerfile) if dockerfile else None
        self.external_secrets = set(external_secrets)
        self.probes = []  # (image, path, container argv) of every HTTP probe, for live checks

    # -- structure ------------------------------------------------------------------------
    def check_schemas(self, objects):
        problems = []
        for obj in objects:
            key = (obj.get("apiVersion"), obj.get("kind"))
            validator = self.validators.get(key)
            if validator is None:
                problems.append(f"{where(obj)}: no schema for {key[0]} {key[1]}")
                continue
            for e in validator.iter_errors(obj):
                path = "/".join(str(p) for p in e.absolute_path)
                problems.append(f"{where(obj)}: {path}: {e.message}")
            if key in self.custom_kinds and hasattr(self, "object_meta"):
                for e in self.object_meta.iter_errors(obj.get("metadata", {})):
                    problems.append(f"{where(obj)}: metadata: {e.message}")
        return problems

    # -- semantics --------------------------------------------------------------------------
    def check_semantics(self, objects):
        p = []
        by_kind = {}
        for obj in objects:
            by_kind.setdefault(obj.get("kind"), {})[name_of(obj)] = obj
        secrets = {n: self.secret_values(s) for n, s in by_kind.get("Secret", {}).items()}
        config_maps = {n: (c.get("data") or {}) for n, c in by_kind.get("ConfigMap", {}).items()}

        namespaces = set(by_kind.get("Namespace", {}))
        if namespaces:
            for obj in objects:
                ns = obj.get("metadata", {}).get("namespace")
                if obj.get("kind") != "Namespace" and ns not in namespaces:
                    p.append(f"{where(obj)}: namespace {ns!r} is not the stream's {sorted(namespaces)}")

        runtimes = {(o.get("kind"), name_of(o)): o for o in objects if o.get("kind") in RUNTIME_KINDS}
        templates = [(label, t) for obj in objects for label, t in pod_templates(obj, runtimes)]
        referenced = {runtime_key(o) for o in by_kind.get("TrainJob", {}).values()}
        for key, runtime in runtimes.items():  # a runtime no TrainJob here uses: its own pod
            if key not in referenced and node_job(runtime):
                templates.append((where(runtime), node_job(runtime).get("spec", {}).get("template") or {}))
        for obj in by_kind.get("Deployment", {}).values():
            selector = obj["spec"].get("selector", {}).get("matchLabels", {})
            labels = obj["spec"]["template"].get("metadata", {}).get("labels", {})
            if not selector or any(labels.get(k) != v for k, v in selector.items()):
                p.append(f"{where(obj)}: spec.selector {selector} does not select its pod template")
        for svc in by_kind.get("Service", {}).values():
            p += self.check_service(svc, templates)

        ddpipe_images = set()
        for label, template in templates:
            spec = template.get("spec") or {}
            p += self.check_pod(label, spec, by_kind, secrets, config_maps, ddpipe_images)
        if len(ddpipe_images) > 1:
            p.append(f"ddpipe containers use several images: {sorted(ddpipe_images)}")
        for job in by_kind.get("PyTorchJob", {}).values():
            p += self.check_pytorchjob(job)
        for job in by_kind.get("TrainJob", {}).values():
            p += self.check_trainjob(job, runtimes)
        for label, template in templates:
            if "PyTorchJob" in label or "TrainJob" in label:
                if not isinstance((template.get("spec") or {}).get("terminationGracePeriodSeconds"), int):
                    p.append(f"{label}: no terminationGracePeriodSeconds: a rank stores its preemption "
                             "checkpoint after SIGTERM (checkpoint.preempt_grace_s), before SIGKILL")

        # No credential outside a Secret.
        values = {v for vals in secrets.values() for v in vals.values() if len(v) >= 8}
        for obj in objects:
            if obj.get("kind") == "Secret":
                continue
            text = json.dumps(obj)
            for v in values:
                if v in text:
                    p.append(f"{where(obj)}: contains the value of a Secret key literally")
        return p

    @staticmethod
    def secret_values(secret):
        out = dict(secret.get("stringData") or {})
        for k, v in (secret.get("data") or {}).items():
            out[k] = base64.b64decode(v).decode("utf-8", "replace")
        return out

    def check_service(self, svc, templates):
        p = []
        selector = svc.get("spec", {}).get("selector") or {}
        selected = [(label, t) for label, t in templates
                    if selector and all(t.get("metadata", {}).get("labels", {}).get(k) == v
                                        for k, v in selector.items())]
        if not selected:
            return [f"{where(svc)}: selector {selector} matches no pod template"]
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port.get("port"))
            found = any(
                (cp.get("name") == target if isinstance(target, str) else cp.get("containerPort") == target)
                for _, t in selected for c in containers_of(t.get("spec", {})) for cp in c.get("ports", []))
            if not found:
                p.append(f"{where(svc)}: targetPort {target!r} is no container port of {selected[0][0]}")
        return p

    def check_pod(self, label, spec, by_kind, secrets, config_maps, ddpipe_images):
        p = []
        sa = spec.get("serviceAccountName")
        if sa and sa != "default" and sa not in by_kind.get("ServiceAccount", {}):
            p.append(f"{label}: ServiceAccount {sa} does not exist")
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        for v in volumes.values():
            if "configMap" in v and v["configMap"].get("name") not in config_maps:
                p.append(f"{label}: volume {v['name']}: ConfigMap {v['configMap'].get('name')} does not exist")
            if "secret" in v:
                name = v["secret"].get("secretName")
                if name not in secrets and name not in self.external_secrets:
                    p.append(f"{label}: volume {v['name']}: Secret {name} does not exist")
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"].get("claimName")
                if claim not in by_kind.get("PersistentVolumeClaim", {}):
                    p.append(f"{label}: volume {v['name']}: PersistentVolumeClaim {claim} does not exist")
        runtime = self.dockerfile.runtime if self.dockerfile else None
        for c in containers_of(spec):
            cl = f"{label}/{c.get('name')}"
            mounts = {m.get("mountPath"): m for m in c.get("volumeMounts") or []}
            for m in mounts.values():
                if m.get("name") not in volumes:
                    p.append(f"{cl}: volumeMount {m.get('name')} names no volume")
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {})
                if "secretKeyRef" in ref:
                    p += self.check_key_ref(cl, e["name"], "Secret", ref["secretKeyRef"], secrets)
                elif "configMapKeyRef" in ref:
                    p += self.check_key_ref(cl, e["name"], "ConfigMap", ref["configMapKeyRef"], config_maps)
                elif "value" in e and CREDENTIAL_NAME.search(e["name"]) and e["value"]:
                    p.append(f"{cl}: env {e['name']} holds a literal credential; use a secretKeyRef")
            for source in c.get("envFrom") or []:
                if "secretRef" in source:
                    name = source["secretRef"].get("name")
                    if name not in secrets and name not in self.external_secrets:
                        p.append(f"{cl}: envFrom Secret {name} does not exist")
                if "configMapRef" in source and source["configMapRef"].get("name") not in config_maps:
                    p.append(f"{cl}: envFrom ConfigMap {source['configMapRef'].get('name')} does not exist")
            ports = c.get("ports") or []
            is_ddpipe = image_repo(c.get("image", "")) == "ddpipe"
            argv = argv_of(c, runtime["entrypoint"] if runtime and is_ddpipe else None)
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                http = (c.get(kind) or {}).get("httpGet")
                if not http:
                    continue
                port = http.get("port")
                match = [cp for cp in ports if (cp.get("name") == port if isinstance(port, str)
                                                else cp.get("containerPort") == port)]
                if not match:
                    p.append(f"{cl}: {kind} port {port!r} is no container port")
                elif is_ddpipe and str(match[0]["containerPort"]) != option(argv, "--port"):
                    p.append(f"{cl}: {kind} probes port {match[0]['containerPort']} but the server "
                             f"listens on --port {option(argv, '--port')}")
                if image_repo(c.get("image", "")) == "minio" and http.get("path") not in MINIO_HEALTH:
                    p.append(f"{cl}: {kind} path {http.get('path')} is not a MinIO health endpoint")
                elif not is_ddpipe and image_repo(c.get("image", "")) != "minio":
                    p.append(f"{cl}: {kind}: cannot tell the endpoints of image {c.get('image')}")
                self.probes.append((c.get("image"), http.get("path"), argv, kind))
            if not is_ddpipe:
                continue
            ddpipe_images.add(c.get("image"))
            config = option(argv, "--config")
            if config:
                p += self.check_config_mount(cl, config, mounts, volumes, config_maps)
            if runtime:
                p += self.check_image_contract(cl, c, spec, argv, mounts, runtime)
        return p

    def check_key_ref(self, cl, var, kind, ref, known):
        name, key = ref.get("name"), ref.get("key")
        if kind == "Secret" and name in self.external_secrets:
            return []
        if name not in known:
            return [f"{cl}: env {var}: {kind} {name} does not exist"]
        if key not in known[name]:
            return [f"{cl}: env {var}: {kind} {name} has no key {key}"]
        return []

    @staticmethod
    def check_config_mount(cl, config, mounts, volumes, config_maps):
        directory, file = os.path.split(config)
        mount = mounts.get(config) or mounts.get(directory)
        if not mount:
            return [f"{cl}: --config {config} is in no mounted volume"]
        source = volumes.get(mount.get("name"), {}).get("configMap")
        if source is None:
            return [f"{cl}: --config {config} is not in a ConfigMap volume"]
        key = mount.get("subPath") or file
        items = {i["path"]: i["key"] for i in source.get("items") or []}
        key = items.get(key, key) if items else key
        if key not in config_maps.get(source.get("name"), {}):
            return [f"{cl}: --config {config}: ConfigMap {source.get('name')} has no key {key}"]
        return []

    def check_image_contract(self, cl, c, spec, argv, mounts, runtime):
        p = []
        entry = runtime["entrypoint"][0]
        if c.get("command") and c["command"][0] != entry:
            p.append(f"{cl}: command {c['command'][0]} is not the image's entrypoint {entry}")
        uid = self.dockerfile.uid()
        sc = dict(spec.get("securityContext") or {}, **(c.get("securityContext") or {}))
        if sc.get("runAsUser") not in (None, uid):
            p.append(f"{cl}: runAsUser {sc.get('runAsUser')} is not the image's USER {uid}")
        if not sc.get("runAsNonRoot"):
            p.append(f"{cl}: runAsNonRoot is not set (the image runs as {uid})")
        if sc.get("readOnlyRootFilesystem"):
            home = runtime["env"].get("HOME", "/")
            if "/tmp" not in mounts:
                p.append(f"{cl}: read-only root filesystem without a /tmp volume")
            if not any(m == home or m.startswith(home + "/") for m in mounts):
                p.append(f"{cl}: read-only root filesystem without a volume for the cache under {home}")
        return p

    def check_pytorchjob(self, job):
        p = []
        name = name_of(job)
        spec = job.get("spec", {})
        replicas = spec.get("pytorchReplicaSpecs", {})
        master = replicas.get("Master")
        if not master or master.get("replicas", 1) != 1:
            return [f"{where(job)}: needs exactly one Master replica (MASTER_ADDR, RANK 0)"]
        workers = replicas.get("Worker", {}).get("replicas", 1) if "Worker" in replicas else 0
        pods = 1 + workers
        nproc = str(spec.get("nprocPerNode", "auto"))
        world = pods * (int(nproc) if nproc.isdigit() else 1)
        services = [f"{name}-master-0"] + [f"{name}-worker-{i}" for i in range(workers)]
        for svc in services[:1] + services[-1:]:
            if not DNS_LABEL.match(svc) or len(svc) > 63:
                p.append(f"{where(job)}: pod Service name {svc} is not a DNS label (job name too long?)")
        master_addr = services[0]
        entry = self.dockerfile.runtime["entrypoint"] if self.dockerfile else None
        master_port = OPERATOR_PORT
        per_pod = {}  # replica type -> ranks each of its pods starts
        for rtype in ("Master", "Worker"):
            if rtype not in replicas:
                continue
            rs = replicas[rtype]
            if rs.get("restartPolicy") not in ("OnFailure", "ExitCode"):
                p.append(f"{where(job)}/{rtype}: restartPolicy {rs.get('restartPolicy')!r}: use ExitCode "
                         "(ddpipe exits 128+ for retryable failures) or OnFailure")
            pytorch = [c for c in rs["template"]["spec"].get("containers", []) if c.get("name") == "pytorch"]
            if not pytorch:
                p.append(f"{where(job)}/{rtype}: no container named 'pytorch' (the operator configures only it)")
                continue
            c = pytorch[0]
            if rtype == "Master":
                master_port = next((cp["containerPort"] for cp in c.get("ports", [])
                                    if cp.get("name") == "pytorchjob-port"), OPERATOR_PORT)
            env = {e["name"]: e.get("value") for e in c.get("env") or []}
            for var, want in (("MASTER_ADDR", master_addr), ("MASTER_PORT", str(master_port))):
                if var in env and env[var] != want:
                    p.append(f"{where(job)}/{rtype}: env {var}={env[var]} overrides the operator's {want}")
            for var in ("WORLD_SIZE", "RANK"):
                if var in env:
                    p.append(f"{where(job)}/{rtype}: env {var} is the operator's to set")
            argv = argv_of(c, entry)
            per_pod[rtype] = self.ranks_per_pod(argv, nproc)
            if per_pod[rtype] is None:
                p.append(f"{where(job)}/{rtype}: cannot tell how many ranks `{' '.join(argv[:2])}` starts")
            if argv[1:2] == ["train"] and env.get("DDPIPE_RUN_ID") != name:
                p.append(f"{where(job)}/{rtype}: DDPIPE_RUN_ID must be the job name {name} "
                         "(restarted pods resume the run's checkpoints)")
        counts = set(per_pod.values())
        if len(counts) > 1:
            p.append(f"{where(job)}: Master and Worker pods start different numbers of ranks "
                     f"{per_pod}; RANK is the pod index, so every pod must start the same number")
        elif counts and None not in counts:
            k = counts.pop()
            # Pod i runs ranks i*k .. i*k+k-1: together 0 .. pods*k-1, which must be WORLD_SIZE
            # whenever the operator counts processes (a numeric nprocPerNode, or one per pod).
            if (nproc.isdigit() or k == 1) and pods * k != world:
                p.append(f"{where(job)}: {pods} pods x {k} ranks = {pods * k} ranks, but the operator "
                         f"sets WORLD_SIZE={world} (nprocPerNode {nproc})")
        return p

    def check_trainjob(self, job, runtimes):
        name = name_of(job)
        spec = job.get("spec") or {}
        trainer = spec.get("trainer") or {}
        kind, ref = runtime_key(job)
        runtime = runtimes.get((kind, ref))
        if runtime is None:
            if (kind, ref) == ("ClusterTrainingRuntime", "torch-distributed"):
                return []  # the stock runtime, installed with the Trainer: nothing more to check
            return [f"{where(job)}: spec.runtimeRef names {kind} {ref}, which is not in the stream"]
        p = []
        if kind == "TrainingRuntime" and runtime.get("metadata", {}).get("namespace") != \
                job.get("metadata", {}).get("namespace"):
            p.append(f"{where(job)}: TrainingRuntime {ref} is in another namespace")
        torch = ((runtime.get("spec") or {}).get("mlPolicy") or {}).get("torch")
        if torch is None:
            p.append(f"{where(runtime)}: no mlPolicy.torch: no PET_* environment for the ranks")
        rj = node_job(runtime)
        if rj is None:
            return p + [f"{where(runtime)}: no replicated Job 'node' (the trainer step)"]
        pod = trainjob_pod(job, runtime)
        node = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == "node"), None)
        if node is None:
            return p + [f"{where(runtime)}: no container named 'node' (the torch plugin configures only it)"]
        p += self.check_exit_codes(runtime, rj, pod)
        nodes = trainer.get("numNodes", (runtime["spec"].get("mlPolicy") or {}).get("numNodes", 1))
        last = f"{name}-node-0-{max(nodes - 1, 0)}"
        if not DNS_LABEL.match(last) or len(last) > 63:
            p.append(f"{where(job)}: pod hostname {last} is not a DNS label (job name too long?)")
        env = {e["name"]: e.get("value") for e in node.get("env") or []}
        for var in PLUGIN_ENV + ("WORLD_SIZE", "RANK"):
            if var in env:
                p.append(f"{where(job)}: env {var} is the torch plugin's to set (or unset under v2)")
        argv = argv_of(node, self.dockerfile.runtime["entrypoint"] if self.dockerfile else None)
        per_node = trainer.get("numProcPerNode")
        ranks = self.ranks_per_pod(argv, str(per_node) if per_node else "auto")
        if ranks is None:
            p.append(f"{where(job)}: cannot tell how many ranks `{' '.join(argv[:2])}` starts")
        elif per_node is not None and ranks != per_node:
            p.append(f"{where(job)}: each node starts {ranks} ranks but numProcPerNode is {per_node}")
        elif per_node is None and argv[1:2] == ["train"]:
            p.append(f"{where(job)}: `ddpipe train` is one rank: set spec.trainer.numProcPerNode: 1 "
                     "(else PET_NPROC_PER_NODE is the node's CPU count)")
        if argv[1:2] == ["train"] and env.get("DDPIPE_RUN_ID") != name:
            p.append(f"{where(job)}: DDPIPE_RUN_ID must be the job name {name} "
                     "(restarted pods resume the run's checkpoints)")
        return p

    @staticmethod
    def check_exit_codes(runtime, rj, pod):
        """ddpipe's exit codes under the Trainer: 1-127 fail the JobSet, 128+ restart it, a
        preemption (143, or an evicted pod) is not counted as a failure."""
        p = []
        rules = ((rj.get("spec") or {}).get("podFailurePolicy") or {}).get("rules") or []
        permanent = [r for r in rules if r.get("action") == "FailJob" and
                     (r.get("onExitCodes") or {}).get("operator") == "In" and
                     (r.get("onExitCodes") or {}).get("containerName") in (None, "node") and
                     sorted((r.get("onExitCodes") or {}).get("values") or []) == PERMANENT_EXIT_CODES]
        if not permanent:
            p.append(f"{where(runtime)}: the node Job's podFailurePolicy must FailJob on exit codes "
                     "1-127 of container node (ddpipe's permanent failures)")
        preempted = [r for r in rules if r.get("action") == "Ignore" and
                     (r.get("onExitCodes") or {}).get("operator") == "In" and
                     (r.get("onExitCodes") or {}).get("values") == [PREEMPTED_EXIT_CODE]]
        evicted = [r for r in rules if r.get("action") == "Ignore" and
                   {"type": "DisruptionTarget"} in (r.get("onPodConditions") or [])]
        if not preempted or not evicted:
            p.append(f"{where(runtime)}: the node Job's podFailurePolicy must Ignore exit code "
                     f"{PREEMPTED_EXIT_CODE} (preempted at a checkpoint) and the DisruptionTarget "
                     "condition (evicted), so that preemptions do not use up the restart budget")
        if (pod.get("spec") or {}).get("restartPolicy") != "Never":
            p.append(f"{where(runtime)}: the node pods need restartPolicy Never (podFailurePolicy)")
        failure = (((runtime.get("spec") or {}).get("template") or {}).get("spec") or {}).get("failurePolicy") or {}
        if not any(r.get("action") == "FailJobSet" and "PodFailurePolicy" in (r.get("onJobFailureReasons") or [])
                   for r in failure.get("rules") or []):
            p.append(f"{where(runtime)}: failurePolicy must FailJobSet on reason PodFailurePolicy "
                     "(else a permanent exit code is retried)")
        if not failure.get("maxRestarts"):
            p.append(f"{where(runtime)}: failurePolicy.maxRestarts is 0: exit codes 128+ (retryable) "
                     "would not restart the job")
        return p

    @staticmethod
    def ranks_per_pod(argv, nproc):
        if not argv or os.path.basename(argv[0]) != "ddpipe" or len(argv) < 2:
            return None
        if argv[1] == "train":
            return 1
        if argv[1] == "launch":
            given = option(argv, "--nproc-per-node")
            if given and given.isdigit():
                return int(given)
            return int(nproc) if nproc.isdigit() else None
        return None

    def check(self, objects, schemas=True):
        return (self.check_schemas(objects) if schemas and self.validators else []) + \
            self.check_semantics(objects)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemas", help="folder of the Kubernetes JSON schemas")
    parser.add_argument("--crd", action="append", default=[],
                        help="a Kubeflow CRD (kubeflow.org_pytorchjobs.yaml, trainer.kubeflow.org_*.yaml)")
    parser.add_argument("--dockerfile", help="deploy/docker/Dockerfile")
    parser.add_argument("--external-secret", action="append", default=[],
                        help="a Secret created outside these manifests")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    checker = Checker(args.schemas, args.crd, args.dockerfile, args.external_secret)
    failed = False
    for file in args.files:
        text = sys.stdin.read() if file == "-" else open(file).read()
        objects = load_stream(text)
        problems = checker.check(objects)
        for problem in problems:
            print(f"{file}: {problem}")
        print(f"{file}: {len(objects)} objects, {len(problems)} problems", file=sys.stderr)
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
