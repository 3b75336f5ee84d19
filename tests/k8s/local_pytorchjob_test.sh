#!/usr/bin/env bash
# `ddpipe launch --from-pytorchjob` runs a job rendered by `ddpipe k8s render` end to end here,
# with the environment the training operator gives each pod:
#  1. bridge: every pod in its own network namespace on a bridge, so MASTER_ADDR (the master
#     pod's name) resolves to another host's address; 1 Master + 2 Workers train the tiny
#     synthetic job and publish a version of world size 3. The launcher removes its bridge.
#  2. host: the same with every pod name resolving to 127.0.0.1 (mount namespaces only).
#  3. nprocPerNode 2 with `ddpipe launch` as the pods' command: 2 pods x 2 ranks, the launcher in
#     each pod taking its node rank from the pod's RANK.
#  4. a job its pods cannot run (nprocPerNode 2 with `ddpipe train`) fails at once, exit code 2.
#  5. as an unprivileged user (user namespaces), where the kernel allows them.
# The launcher runs inside a network namespace of its own, so whatever it creates there (bridge,
# veths) goes when the test deletes it. Needs root, iproute2 and unshare: exits 77 (skipped)
# otherwise. Cleans up every namespace, link, process and file it creates, also on failure.
set -euo pipefail
DDPIPE=$(realpath "${1:?usage: local_pytorchjob_test.sh path/to/ddpipe}")

if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null || ! command -v setsid >/dev/null; then
  echo "SKIP: needs root and iproute2 (network namespaces, veth, bridge)"
  exit 77
fi

NS="ddpk8s$$"
WORK=$(mktemp -d /tmp/ddpipe-k8s-XXXXXX)
# The launcher's links (ddpbr<pid>, ddpv<pid>-<i>) on this host; other tests may add their own.
links() { ip -o link show | awk -F': ' '{print $2}' | grep -E '^ddp(br|v)' | sort || true; }
LINKS_BEFORE=$(links)
GROUPS_STARTED=()
cleanup() {
  for pgid in "${GROUPS_STARTED[@]}"; do kill -9 -- "-$pgid" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL: $*"; exit 1; }

ip netns add "$NS"
ip -n "$NS" link set lo up

cat >"$WORK/tiny.yaml" <<YAML
name: tiny
store: $WORK/store
seed: 42
deterministic: true
data: {format: synthetic, name: tiny-synth, channels: 1, height: 12, width: 12,
       train_size: 384, test_size: 101, classes: 4}
model: {width: 4}
loader: {workers: 1}
train: {epochs: 2, batch_size: 32, threads: 1}
dist: {rdzv_timeout_s: 60, timeout_s: 60}
YAML

# Runs `ddpipe launch --from-pytorchjob` in the test's namespace, in a process group of its own.
launch() {  # job.yaml log network
  setsid ip netns exec "$NS" "$DDPIPE" launch --from-pytorchjob "$1" --pod-network "$3" >"$2" 2>&1 &
  local pid=$!
  GROUPS_STARTED+=("$pid")
  local code=0
  timeout 300 tail --pid="$pid" -f /dev/null || fail "launch did not finish within 300 s"
  wait "$pid" || code=$?
  return "$code"
}

# The JSON log line of `msg` from the pod of `rank` (every line of a rank carries its rank).
line_of() { grep "\"msg\":\"$2\"" "$1" | grep "\"rank\":$3[,}]" | head -n 1; }

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
  code=0
  ( cd "$WORK/nobody" && as_nobody "$DDPIPE" launch --from-pytorchjob "$WORK/nobody/job.yaml" \
      >"$WORK/nobody/run.log" 2>&1 ) || code=$?
  [[ $code -eq 0 ]] || { tail -n 20 "$WORK/nobody/run.log"; fail "unprivileged run failed ($code)"; }
  line_of "$WORK/nobody/run.log" "rank contract" 1 | grep -q '"master":"tiny-user-master-0:23456"' ||
    fail "rank 1 did not get MASTER_ADDR=tiny-user-master-0"
  echo "ok: 2 pods as an unprivileged user"
else
  echo "skip: this kernel allows no unprivileged user namespaces (or setpriv is missing)"
fi

cleanup
trap - EXIT
[[ "$(links)" == "$LINKS_BEFORE" ]] || fail "links left behind: $(diff <(echo "$LINKS_BEFORE") <(links))"
! ip netns list | grep -qw "$NS" || fail "network namespace $NS left behind"
echo "local_pytorchjob: passed"
