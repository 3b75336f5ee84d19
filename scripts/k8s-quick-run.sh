#!/usr/bin/env bash
# `./quick-run.sh --k8s`: the default job on a Kubernetes cluster with the Kubeflow training
# operator v1.8 or Kubeflow Trainer v2.3, as the original setup ran it: clean the namespace,
# apply the infrastructure (MinIO), create the bucket and ingest the dataset (init Job), run the
# training (a PyTorchJob of 1 Master + 1 Worker, or a TrainJob of 2 nodes) following the first
# pod's log, start the inference server, and say where everything is. The operator is the one
# whose CRD the cluster has (pytorchjobs.kubeflow.org, else trainjobs.trainer.kubeflow.org).
#   DDPIPE_K8S_OPERATOR  pytorchjob or trainer-v2 instead of the detected one
#   DDPIPE_K8S_OVERLAY   kustomize overlay to apply (default deploy/k8s/overlays/local, or
#                        deploy/k8s/overlays/trainer-v2 with Trainer v2)
#   DDPIPE_IMAGE         image the nodes can pull (default ddpipe:local, built into minikube)
#   DDPIPE_K8S_TIMEOUT   seconds to wait for training (default 3600)
set -euo pipefail
cd "$(dirname "$0")/.."
NS=mlops-light
IMAGE=${DDPIPE_IMAGE:-ddpipe:local}
TIMEOUT=${DDPIPE_K8S_TIMEOUT:-3600}
say() { echo "k8s: $*"; }
die() { echo "k8s: $*" >&2; exit 1; }
k() { kubectl -n "$NS" "$@"; }
[[ $# -eq 0 ]] || die "unexpected arguments: $* (settings: DDPIPE_K8S_OPERATOR, DDPIPE_K8S_OVERLAY, DDPIPE_IMAGE, DDPIPE_K8S_TIMEOUT)"

command -v kubectl >/dev/null ||
  die "kubectl is not installed: https://kubernetes.io/docs/tasks/tools/ (README, section Kubernetes)"
kubectl get --raw /readyz --request-timeout=10s >/dev/null 2>&1 ||
  die "no Kubernetes cluster is reachable (context: $(kubectl config current-context 2>/dev/null || echo none)); start one with: minikube start --cpus 4 --memory 8g"
# The operator: the one whose CRD the cluster has (the training operator first, the default).
OPERATOR=${DDPIPE_K8S_OPERATOR:-}
if [[ -z "$OPERATOR" ]]; then
  if kubectl get crd pytorchjobs.kubeflow.org >/dev/null 2>&1; then
    OPERATOR=pytorchjob
  elif kubectl get crd trainjobs.trainer.kubeflow.org >/dev/null 2>&1; then
    OPERATOR=trainer-v2
  else
    die "the Kubeflow training operator is not installed (no PyTorchJob CRD pytorchjobs.kubeflow.org, no TrainJob CRD trainjobs.trainer.kubeflow.org); install the training operator v1.8.1 with:
  kubectl apply --server-side -k \"github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.8.1\"
or Kubeflow Trainer v2.3.0 with:
  kubectl apply --server-side -k \"https://github.com/kubeflow/trainer.git/manifests/overlays/manager?ref=v2.3.0\""
  fi
fi
case "$OPERATOR" in
  pytorchjob)
    KIND=pytorchjob CRD=pytorchjobs.kubeflow.org CONTROLLER=kubeflow/training-operator
    OVERLAY=${DDPIPE_K8S_OVERLAY:-deploy/k8s/overlays/local} ;;
  trainer-v2)
    KIND=trainjob CRD=trainjobs.trainer.kubeflow.org
    CONTROLLER=kubeflow-system/kubeflow-trainer-controller-manager
    OVERLAY=${DDPIPE_K8S_OVERLAY:-deploy/k8s/overlays/trainer-v2} ;;
  *) die "DDPIPE_K8S_OPERATOR=$OPERATOR: expected pytorchjob or trainer-v2" ;;
esac
kubectl get crd "$CRD" >/dev/null 2>&1 || die "DDPIPE_K8S_OPERATOR=$OPERATOR but the cluster has no CRD $CRD"
say "operator: $OPERATOR (the cluster has CRD $CRD), overlay $OVERLAY"
kubectl -n "${CONTROLLER%/*}" rollout status "deployment/${CONTROLLER#*/}" --timeout=120s >/dev/null 2>&1 ||
  say "warning: deployment $CONTROLLER is not ready; the ${KIND}s will wait for it"

if [[ "$IMAGE" == ddpipe:local ]]; then
  if command -v minikube >/dev/null && [[ "$(kubectl config current-context)" == minikube ]]; then
    if ! minikube image ls 2>/dev/null | grep -q "ddpipe:local"; then
      say "building ddpipe:local inside minikube (compiles ddpipe: 10-20 minutes the first time)"
      minikube image build -t ddpipe:local -f deploy/docker/Dockerfile .
    fi
  else
    say "note: the nodes must have the image ddpipe:local (or set DDPIPE_IMAGE=<registry>/ddpipe:<tag>)"
  fi
fi

MANIFESTS=$(mktemp)
LOG=$(mktemp)
trap 'rm -f "$MANIFESTS" "$LOG"' EXIT
kubectl kustomize "$OVERLAY" | sed "s#image: ddpipe:local\$#image: $IMAGE#" >"$MANIFESTS"
apply() { kubectl apply -f "$MANIFESTS" -l "app.kubernetes.io/component in ($1)"; }

# The first pod of the training job (it logs the progress): the PyTorchJob's master, the
# TrainJob's node 0 (its name changes when the JobSet recreates it).
first_pod() {
  if [[ $KIND == pytorchjob ]]; then
    echo "$JOB-master-0"
  else
    k get pods -l "jobset.sigs.k8s.io/jobset-name=$JOB,batch.kubernetes.io/job-completion-index=0" \
      -o jsonpath='{.items[-1:].metadata.name}' 2>/dev/null
  fi
}

# Waits until the Job, PyTorchJob or TrainJob $1/$2 reports condition Complete/Succeeded; fails
# on Failed.
wait_for() {
  local kind=$1 name=$2 deadline=$((SECONDS + $3)) state
  while ((SECONDS < deadline)); do
    state=$(k get "$kind" "$name" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}')
    [[ " $state " == *" Complete "* || " $state " == *" Succeeded "* ]] && return 0
    [[ " $state " == *" Failed "* ]] && return 1
    ((SECONDS + 5 < deadline)) || return 1
    sleep 5
  done
  return 1
}

if kubectl get namespace "$NS" >/dev/null 2>&1; then
  say "deleting namespace $NS from a previous run"
  kubectl delete namespace "$NS" --wait=true --timeout=300s
fi

say "infrastructure: namespace $NS, credentials, config, MinIO"
apply "config,storage"
k rollout status deployment/minio --timeout=300s

say "init: bucket and dataset"
apply init
INIT=$(k get job -l app.kubernetes.io/component=init -o jsonpath='{.items[0].metadata.name}')
if ! wait_for job "$INIT" 1200; then
  k logs "job/$INIT" --all-containers --tail=40 || true
  die "the init Job $INIT failed (logs above; kubectl -n $NS describe job $INIT)"
fi
k logs "job/$INIT" -c ingest --tail=3

say "training: the $([[ $KIND == pytorchjob ]] && echo PyTorchJob || echo TrainJob)"
apply train
JOB=$(k get "${KIND}s" -o jsonpath='{.items[0].metadata.name}')
deadline=$((SECONDS + TIMEOUT))
until [[ -n "$(first_pod)" && "$(k get pod "$(first_pod)" -o jsonpath='{.status.phase}' 2>/dev/null)" =~ Running|Succeeded|Failed ]]; do
  ((SECONDS < deadline)) || die "the first pod of $JOB never started (kubectl -n $NS describe $KIND $JOB)"
  sleep 3
done
# Follow the first pod; a retried pod (exit code 128+) starts a new log, followed again.
until wait_for "$KIND" "$JOB" 1; do
  ((SECONDS < deadline)) || die "$KIND $JOB did not finish within ${TIMEOUT}s"
  k logs -f "$(first_pod)" 2>/dev/null | tee -a "$LOG" || sleep 5
  state=$(k get "$KIND" "$JOB" -o jsonpath='{.status.conditions[-1:].type}')
  [[ "$state" == Failed ]] && die "$KIND $JOB failed (kubectl -n $NS describe $KIND $JOB; kubectl -n $NS get pods)"
done

say "serving: ddpipe serve watches the model's latest version"
apply serve
k rollout status "deployment/$JOB-serve" --timeout=600s

STORE=$(k get configmap "$JOB-config" -o jsonpath='{.data.config\.yaml}' | sed -n 's/^store: *//p')
STORE=${STORE:-s3://ddpipe}
MODEL=$(grep -o '"model":"[^"]*"' "$LOG" | tail -n 1 | cut -d'"' -f4)
VERSION=$(grep -o '"version":"model_v[^"]*"' "$LOG" | tail -n 1 | cut -d'"' -f4)
METRICS=$(grep -o '"metrics":"metrics/[^"]*"' "$LOG" | tail -n 1 | cut -d'"' -f4)
echo
echo "$([[ $KIND == pytorchjob ]] && echo PyTorchJob || echo TrainJob) $JOB succeeded in namespace $NS."
echo "Model version: $STORE/models/$MODEL/$VERSION/  (model_latest -> $VERSION)"
echo "Metrics:       $STORE/$METRICS"
echo "MinIO console: kubectl -n $NS port-forward svc/minio 9001:9001, then http://localhost:9001"
echo "               (user and password: kubectl -n $NS get secret minio-credentials -o jsonpath='{.data.access-key}' | base64 -d; ... secret-key)"
echo "Predict:       kubectl -n $NS port-forward svc/$JOB-serve 8080:8080, then"
echo "               curl -F file=@image.png http://localhost:8080/predict"
