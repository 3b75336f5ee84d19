#!/usr/bin/env bash
# `ddpipe launch --from-trainjob` runs a Kubeflow Trainer v2 TrainJob rendered by `ddpipe k8s
# render --operator trainer-v2` end to end here, with the environment the v2.3.0 torch plugin
# gives each node:
#  0. a hand-written TrainJob on the stock torch-distributed runtime: a node's hostname, the
#     plugin's PET_* env, and PET_MASTER_ADDR (<job>-node-0-0.<job>) resolving to node 0.
#  1. bridge: each node in its own network namespace; 2 nodes x 1 process train the tiny
#     synthetic job and publish a version of world size 2, the master reached over eth0.
#  2. host: the same with every node name resolving to 127.0.0.1.
#  3. a TrainJob its nodes cannot run (numProcPerNode 2 with `ddpipe train`) fails at once, exit 2.
# The launcher runs inside a network namespace of its own. Needs root, iproute2 and setsid: exits
# 77 (skipped) otherwise. Cleans up what it creates, also on failure (KEEP_WORK=1 keeps the logs).
set -euo pipefail
DDPIPE=$(realpath "${1:?usage: local_trainjob_test.sh path/to/ddpipe}")

# shellcheck source=tests/k8s/local_job_lib.sh
source "$(dirname "$0")/local_job_lib.sh"
local_job_init ddpipe-trainjob --from-trainjob

echo "== 0. what a node sees: hostname, the plugin's env, the master's name"
cat >"$WORK/echo.yaml" <<'YAML'
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: echo, namespace: team}
spec:
  runtimeRef: {name: torch-distributed}
  trainer:
    image: busybox
    command: [sh, -c]
    args: ["echo $(hostname) nodes=$PET_NNODES nproc=$PET_NPROC_PER_NODE rank=$PET_NODE_RANK master=$PET_MASTER_ADDR:$PET_MASTER_PORT world=${WORLD_SIZE:-unset} $(getent hosts $PET_MASTER_ADDR | tr -s ' ')"]
    numNodes: 2
    resourcesPerNode: {limits: {cpu: "3"}}
YAML
launch "$WORK/echo.yaml" "$WORK/echo.log" bridge || { cat "$WORK/echo.log"; fail "echo job failed"; }
seen=$(grep '^echo-node-0-1 ' "$WORK/echo.log" || true)
[[ "$seen" =~ ^echo-node-0-1\ nodes=2\ nproc=3\ rank=1\ master=echo-node-0-0\.echo:29500\ world=unset\ 10\.233\.[0-9]+\.2\ echo-node-0-0 ]] ||
  fail "node 1 saw: '$seen'"
grep -q '^echo-node-0-0 nodes=2 nproc=3 rank=0 ' "$WORK/echo.log" ||
  fail "node 0 saw: $(grep '^echo-node-0-0' "$WORK/echo.log")"
echo "ok: $seen"

echo "== 1. bridge: one network namespace per node, 2 nodes x 1 process"
"$DDPIPE" ingest --config "$WORK/tiny.yaml" >/dev/null 2>&1
"$DDPIPE" k8s render --operator trainer-v2 --config "$WORK/tiny.yaml" --workers 1 \
  --job-name tiny-v2 --metrics-port 0 >"$WORK/job.yaml" 2>/dev/null
grep -q '^kind: TrainJob$' "$WORK/job.yaml" || fail "the render holds no TrainJob"
launch "$WORK/job.yaml" "$WORK/bridge.log" bridge || { tail -n 30 "$WORK/bridge.log"; fail "bridge job failed"; }
contract=$(line_of "$WORK/bridge.log" "rank contract" 1)
[[ "$contract" == *'"contract":"trainer-v2"'* && "$contract" == *'"world_size":2'* &&
   "$contract" == *'"master":"tiny-v2-node-0-0.tiny-v2:29500"'* ]] ||
  fail "rank 1 did not see the Trainer v2 contract: $contract"
line_of "$WORK/bridge.log" "gloo interface chosen by route to the master" 1 | grep -q '"interface":"eth0"' ||
  fail "node 1 must reach the master over its eth0"
grep -q '"world_size": 2' < <("$DDPIPE" models show --store "$WORK/store" tiny 2>/dev/null) ||
  fail "no version of world size 2 was published"
echo "ok: 2 nodes on a bridge, version published"

echo "== 2. host: every node name is 127.0.0.1"
"$DDPIPE" ingest --config "$WORK/tiny.yaml" --store "$WORK/store-host" >/dev/null 2>&1
"$DDPIPE" k8s render --operator trainer-v2 --config "$WORK/tiny.yaml" --store "$WORK/store-host" \
  --workers 1 --job-name tiny-host --metrics-port 0 >"$WORK/host.yaml" 2>/dev/null
launch "$WORK/host.yaml" "$WORK/host.log" host || { tail -n 30 "$WORK/host.log"; fail "host job failed"; }
line_of "$WORK/host.log" "rank contract" 1 | grep -q '"master":"tiny-host-node-0-0.tiny-host:29500"' ||
  fail "rank 1 did not get PET_MASTER_ADDR=tiny-host-node-0-0.tiny-host"
grep -q '"world_size": 2' < <("$DDPIPE" models show --store "$WORK/store-host" tiny 2>/dev/null) ||
  fail "no version of world size 2 was published"
echo "ok: 2 nodes over loopback, version published"

echo "== 3. a TrainJob its nodes cannot run fails at once"
sed 's/numProcPerNode: 1/numProcPerNode: 2/' "$WORK/host.yaml" >"$WORK/bad.yaml"
code=0
launch "$WORK/bad.yaml" "$WORK/bad.log" host || code=$?
[[ $code -eq 2 ]] || { tail -n 20 "$WORK/bad.log"; fail "expected exit code 2, got $code"; }
grep -q 'PET_NPROC_PER_NODE=2' "$WORK/bad.log" || fail "the nodes did not say why"
echo "ok: exit code 2"

local_job_cleanup
trap - EXIT
! ip netns list | grep -qw "$NS" || fail "network namespace $NS left behind"
echo "local_trainjob: passed"
