#!/usr/bin/env bash
# `ddpipe launch --from-pytorchjob` runs a job rendered by `ddpipe k8s render` end to end here,
# with the environment the training operator gives each pod:
#  0. a hand-written echo job: a pod's hostname, the operator's env, and the pods' and the file's
#     Services' names as a pod resolves them.
#  1. bridge: every pod in its own network namespace on a bridge, so MASTER_ADDR (the master
#     pod's name) resolves to another host's address; 1 Master + 2 Workers train the tiny
#     synthetic job and publish a version of world size 3. The launcher removes its bridge.
#  2. host: the same with every pod name resolving to 127.0.0.1 (mount namespaces only).
#  3. nprocPerNode 2 with `ddpipe launch` as the pods' command: 2 pods x 2 ranks, the launcher in
#     each pod taking its node rank from the pod's RANK.
#  4. a job its pods cannot run (nprocPerNode 2 with `ddpipe train`) fails at once, exit code 2.
#  5. as an unprivileged user (user namespaces), where the kernel allows them.
#  6. with an S3 test server (DDPIPE_S3_TEST_ENDPOINT, as run-tests.sh provides): the init Job's
#     commands create the bucket and ingest, twice (idempotent), and the pods train into it.
# The launcher runs inside a network namespace of its own, so whatever it creates there (bridge,
# veths) goes when the test deletes it. Needs root, iproute2 and unshare: exits 77 (skipped)
# otherwise. Cleans up every namespace, link, process and file it creates, also on failure
# (KEEP_WORK=1 keeps the work folder with the pods' logs for a look).
set -euo pipefail
DDPIPE=$(realpath "${1:?usage: local_pytorchjob_test.sh path/to/ddpipe}")

# shellcheck source=tests/k8s/local_job_lib.sh
source "$(dirname "$0")/local_job_lib.sh"
local_job_init ddpipe-k8s --from-pytorchjob
# The launcher's links (ddpbr<pid>, ddpv<pid>-<i>) on this host; other tests may add their own.
links() { ip -o link show | awk -F': ' '{print $2}' | grep -E '^ddp(br|v)' | sort || true; }
LINKS_BEFORE=$(links)

echo "== 0. what a pod sees: hostname, the operator's env, the pods' and Services' names"
cat >"$WORK/echo.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: minio, namespace: team}
spec: {selector: {app: minio}, ports: [{port: 9000}]}
---
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: echo, namespace: team}
spec:
  pytorchReplicaSpecs:
    Master:
      restartPolicy: OnFailure
      template:
        spec:
          containers:
          - name: pytorch
            image: busybox
            command: [sh, -c]
            args: ["echo $(hostname) rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT nodes=$PET_NNODES $(getent hosts echo-worker-0.team.svc.cluster.local minio | tr -s ' ' | tr '\n' ' ')"]
    Worker:
      replicas: 1
      restartPolicy: OnFailure
      template:
        spec:
          containers:
          - {name: pytorch, image: busybox, command: [sh, -c], args: ["echo $(hostname) rank=$RANK"]}
YAML
launch "$WORK/echo.yaml" "$WORK/echo.log" bridge || { cat "$WORK/echo.log"; fail "echo job failed"; }
seen=$(grep '^echo-master-0 ' "$WORK/echo.log" || true)
[[ "$seen" =~ ^echo-master-0\ rank=0\ world=2\ master=echo-master-0:23456\ nodes=2\ 10\.233\.[0-9]+\.3\ echo-worker-0[^\ ]*\ .*10\.233\.[0-9]+\.1\ minio ]] ||
  fail "the master pod saw: '$seen'"
grep -q '^echo-worker-0 rank=1$' "$WORK/echo.log" || fail "the worker pod saw: $(grep '^echo-worker' "$WORK/echo.log")"
echo "ok: $seen"

echo "== 1. bridge: one network namespace per pod"
"$DDPIPE" ingest --config "$WORK/tiny.yaml" >/dev/null 2>&1
"$DDPIPE" k8s render --config "$WORK/tiny.yaml" --workers 2 --job-name tiny-k8s >"$WORK/job.yaml" 2>/dev/null
launch "$WORK/job.yaml" "$WORK/bridge.log" bridge || { tail -n 30 "$WORK/bridge.log"; fail "bridge job failed"; }
contract=$(line_of "$WORK/bridge.log" "rank contract" 2)
[[ "$contract" == *'"contract":"pytorchjob"'* && "$contract" == *'"world_size":3'* &&
   "$contract" == *'"master":"tiny-k8s-master-0:23456"'* ]] ||
  fail "rank 2 did not see the PyTorchJob contract: $contract"
master_ip=$(line_of "$WORK/bridge.log" "gloo interface chosen by route to the master" 0 | grep -o '"address":"[^"]*"')
worker_ip=$(line_of "$WORK/bridge.log" "gloo interface chosen by route to the master" 2 | grep -o '"address":"[^"]*"')
[[ "$master_ip" == '"address":"10.233.'*'.2"' && "$worker_ip" == '"address":"10.233.'*'.4"' ]] ||
  fail "pods must use their own addresses (master .2, worker-1 .4): $master_ip $worker_ip"
line_of "$WORK/bridge.log" "gloo interface chosen by route to the master" 2 | grep -q '"interface":"eth0"' ||
  fail "worker-1 must reach the master over its eth0"
grep -q '"world_size": 3' < <("$DDPIPE" models show --store "$WORK/store" tiny 2>/dev/null) ||
  fail "no version of world size 3 was published"
[[ -z "$(ip -n "$NS" -o link show | grep -E 'ddpbr|ddpv')" ]] ||
  fail "the launcher left links behind: $(ip -n "$NS" -o link show | grep -E 'ddpbr|ddpv')"
echo "ok: 3 pods on a bridge, master $master_ip, worker-1 $worker_ip, version published"

echo "== 2. host: every pod name is 127.0.0.1"
"$DDPIPE" ingest --config "$WORK/tiny.yaml" --store "$WORK/store-host" >/dev/null 2>&1
"$DDPIPE" k8s render --config "$WORK/tiny.yaml" --store "$WORK/store-host" --workers 1 \
  --job-name tiny-host >"$WORK/host.yaml" 2>/dev/null
launch "$WORK/host.yaml" "$WORK/host.log" host || { tail -n 30 "$WORK/host.log"; fail "host job failed"; }
line_of "$WORK/host.log" "rank contract" 1 | grep -q '"master":"tiny-host-master-0:23456"' ||
  fail "rank 1 did not get MASTER_ADDR=tiny-host-master-0"
grep -q '"world_size": 2' < <("$DDPIPE" models show --store "$WORK/store-host" tiny 2>/dev/null) ||
  fail "no version of world size 2 was published"
echo "ok: 2 pods over loopback, version published"

echo "== 3. two ranks per pod: \`ddpipe launch\` in each pod computes the global ranks"
"$DDPIPE" ingest --config "$WORK/tiny.yaml" --store "$WORK/store-launch" >/dev/null 2>&1
"$DDPIPE" k8s render --config "$WORK/tiny.yaml" --store "$WORK/store-launch" --workers 1 \
  --job-name tiny-launch 2>/dev/null |
  sed -e 's/nprocPerNode: "1"/nprocPerNode: "2"/' -e 's/^\( *\)- train$/\1- launch/' >"$WORK/launch.yaml"
launch "$WORK/launch.yaml" "$WORK/launch.log" bridge || { tail -n 30 "$WORK/launch.log"; fail "launch-per-pod job failed"; }
for r in 0 1 2 3; do
  line_of "$WORK/launch.log" "rank contract" "$r" | grep -q '"world_size":4' ||
    fail "no rank $r of world size 4: $(grep '"rank contract"' "$WORK/launch.log")"
done
line_of "$WORK/launch.log" "rank contract" 3 | grep -q '"local_rank":1' ||
  fail "rank 3 must be local rank 1 of the worker pod"
grep -q '"world_size": 4' < <("$DDPIPE" models show --store "$WORK/store-launch" tiny 2>/dev/null) ||
  fail "no version of world size 4 was published"
echo "ok: 2 pods x 2 ranks, RANK = pod index x 2 + local rank"

echo "== 4. a job its pods cannot run fails at once"
sed 's/nprocPerNode: "1"/nprocPerNode: "2"/' "$WORK/host.yaml" >"$WORK/bad.yaml"
code=0
launch "$WORK/bad.yaml" "$WORK/bad.log" host || code=$?
[[ $code -eq 2 ]] || { tail -n 20 "$WORK/bad.log"; fail "expected exit code 2, got $code"; }
grep -q 'PET_NPROC_PER_NODE=2' "$WORK/bad.log" && grep -q 'ddpipe launch' "$WORK/bad.log" ||
  fail "the pods did not say why: $(grep error "$WORK/bad.log" | head -n 2)"
echo "ok: exit code 2: $(grep -o 'PET_NPROC_PER_NODE=2[^"]*' "$WORK/bad.log" | head -n 1)"

echo "== 5. without root: user namespaces instead"
if command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups unshare --user true 2>/dev/null; then
  chmod 755 "$WORK"
  mkdir -m 777 "$WORK/nobody"
  "$DDPIPE" k8s render --config "$WORK/tiny.yaml" --store "$WORK/nobody/store" --workers 1 \
    --job-name tiny-user >"$WORK/nobody/job.yaml" 2>/dev/null
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$WORK/nobody" TMPDIR="$WORK/nobody" "$@"; }
  as_nobody "$DDPIPE" ingest --config "$WORK/tiny.yaml" --store "$WORK/nobody/store" >/dev/null 2>&1
  as_nobody ip netns exec "$NS" true 2>/dev/null && fail "the unprivileged user can enter namespaces"
  # Root enters the test's network namespace (its own ports) and becomes nobody there.
  code=0
  ( cd "$WORK/nobody" && ip netns exec "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups \
      env HOME="$WORK/nobody" TMPDIR="$WORK/nobody" "$DDPIPE" launch \
      --from-pytorchjob "$WORK/nobody/job.yaml" >"$WORK/nobody/run.log" 2>&1 ) || code=$?
  [[ $code -eq 0 ]] || { tail -n 20 "$WORK/nobody/run.log"; fail "unprivileged run failed ($code)"; }
  line_of "$WORK/nobody/run.log" "rank contract" 1 | grep -q '"master":"tiny-user-master-0:23456"' ||
    fail "rank 1 did not get MASTER_ADDR=tiny-user-master-0"
  echo "ok: 2 pods as an unprivileged user"
else
  echo "skip: this kernel allows no unprivileged user namespaces (or setpriv is missing)"
fi

echo "== 6. S3: the init Job's commands create the bucket and ingest, the pods train into it"
if [[ -n "${DDPIPE_S3_TEST_ENDPOINT:-}" ]] && command -v /usr/bin/python3 >/dev/null; then
  BUCKET="ddpk8s$$"
  # The rendered job, pointed at the test server: the Secret's values and the endpoint change
  # (Ceph RGW would take an unknown Host name such as `minio` for a bucket name).
  "$DDPIPE" k8s render --config "$WORK/tiny.yaml" --store "s3://$BUCKET" --workers 1 \
    --job-name tiny-s3 2>/dev/null |
    sed -e "s#access-key: ddpipe-admin#access-key: $DDPIPE_S3_TEST_ACCESS_KEY_ID#" \
        -e "s#secret-key: ddpipe-dev-password#secret-key: $DDPIPE_S3_TEST_SECRET_ACCESS_KEY#" \
        -e "s#http://minio:9000#$DDPIPE_S3_TEST_ENDPOINT#" >"$WORK/s3.yaml"
  # The init Job's containers, in order, with the ConfigMap's config.yaml as a local file.
  /usr/bin/python3 - "$WORK/s3.yaml" "$WORK/s3-config.yaml" >"$WORK/init-commands" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["config.yaml"]
open(sys.argv[2], "w").write(config)
spec = next(d for d in docs if d["kind"] == "Job")["spec"]["template"]["spec"]
for c in spec["initContainers"] + spec["containers"]:
    print("\t".join(a.replace("/etc/ddpipe/config.yaml", sys.argv[2]) for a in c["args"]))
PY
  s3env=(env AWS_ENDPOINT_URL_S3="$DDPIPE_S3_TEST_ENDPOINT" AWS_REGION="$DDPIPE_S3_TEST_REGION"
         AWS_ACCESS_KEY_ID="$DDPIPE_S3_TEST_ACCESS_KEY_ID"
         AWS_SECRET_ACCESS_KEY="$DDPIPE_S3_TEST_SECRET_ACCESS_KEY")
  empty_bucket() {
    "${s3env[@]}" "$DDPIPE" store ls --store "s3://$BUCKET" 2>/dev/null | awk '{print $2}' |
      xargs -r "${s3env[@]}" "$DDPIPE" store rm --store "s3://$BUCKET" >/dev/null 2>&1 || true
  }
  trap 'empty_bucket; local_job_cleanup' EXIT
  for attempt in 1 2; do  # twice: both steps are idempotent
    while IFS=$'\t' read -r -a args; do
      "${s3env[@]}" "$DDPIPE" "${args[@]}" >>"$WORK/init.log" 2>&1 ||
        { tail -n 5 "$WORK/init.log"; fail "init step '${args[*]}' failed (attempt $attempt)"; }
    done <"$WORK/init-commands"
  done
  "${s3env[@]}" "$DDPIPE" store ls --store "s3://$BUCKET" jobs/ 2>/dev/null | grep -q "jobs/tiny-s3/config.yaml" ||
    fail "the bucket step wrote no jobs/tiny-s3/config.yaml into s3://$BUCKET"
  launch_here() {  # host network: the test server listens on this machine's loopback
    "$DDPIPE" launch --from-pytorchjob "$WORK/s3.yaml" >"$WORK/s3.log" 2>&1
  }
  launch_here || { tail -n 30 "$WORK/s3.log"; fail "the job on S3 failed"; }
  "${s3env[@]}" "$DDPIPE" models list --store "s3://$BUCKET" 2>/dev/null | grep -q model_latest ||
    fail "no version in s3://$BUCKET"
  empty_bucket
  trap local_job_cleanup EXIT
  echo "ok: bucket s3://$BUCKET created and filled by the init commands, version trained into it"
else
  echo "skip: no S3 test server (DDPIPE_S3_TEST_ENDPOINT; scripts/s3-test-server.sh start)"
fi

local_job_cleanup
trap - EXIT
[[ "$(links)" == "$LINKS_BEFORE" ]] || fail "links left behind: $(diff <(echo "$LINKS_BEFORE") <(links))"
! ip netns list | grep -qw "$NS" || fail "network namespace $NS left behind"
echo "local_pytorchjob: passed"
