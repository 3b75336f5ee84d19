#!/usr/bin/env bash
# Multi-host training for real: every rank in its own network namespace (its own address on a
# bridge), MASTER_ADDR = the master's address.
#  1. The result over the namespaces equals the result over loopback (byte-identical weights).
#  2. A worker's link is cut mid-training: every rank fails within the timeouts with a clear
#     message and exit code 128; once the link is back, restarting the group completes the job
#     from its last checkpoint.
# Needs root and iproute2; exits 77 (skipped) otherwise. Cleans up everything it creates.
set -euo pipefail
DDPIPE=${1:?usage: netns_test.sh path/to/ddpipe}

if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null; then
  echo "SKIP: needs root and iproute2 (ip netns) to create test hosts"
  exit 77
fi

P="ddt$$"          # unique prefix: interface names must stay under 16 characters
NET=10.231.$(( $$ % 200 ))
WORK=$(mktemp -d /tmp/ddpipe-netns-XXXXXX)
PIDS=()
# shellcheck source=../../scripts/lib/netns-hosts.sh
source "$(dirname "$0")/../../scripts/lib/netns-hosts.sh"
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  netns_hosts_down "$P" 3
  rm -rf "$WORK"
}
trap cleanup EXIT

netns_hosts_up "$P" "$NET" 3
MASTER="$NET.1"
echo "hosts: $NET.1 (master), $NET.2, $NET.3 on bridge ${P}br"

job=(--set cache_dir="$WORK/cache" --set name=mh --set data.format=synthetic
     --set data.name=mh-synth --set data.channels=1 --set data.height=16 --set data.width=16
     --set data.train_size=3072 --set data.test_size=90 --set data.classes=4 --set model.width=8
     --set train.batch_size=32 --set train.threads=1 --set loader.workers=1
     --set deterministic=true --set dist.nproc=3)

# Rank r of 3 in namespace r, like one pod per host.
start_rank() {  # store rank run_id extra...
  local store=$1 rank=$2 run=$3; shift 3
  ip netns exec "${P}n$rank" env MASTER_ADDR="$MASTER" MASTER_PORT=29631 WORLD_SIZE=3 RANK="$rank" \
    LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 DDPIPE_LOG_LEVEL=info \
    "$DDPIPE" train --store "$store" "${job[@]}" --set train.run_id="$run" "$@" \
    >"$WORK/$run.rank$rank.log" 2>&1 &
  PIDS+=($!)
}

weights_of() { sha256sum "$1"/models/mh/model_v*/model.pt | awk '{print $1}'; }

echo "== 1. loopback reference"
"$DDPIPE" ingest --store "$WORK/loop" "${job[@]}" >/dev/null 2>&1
"$DDPIPE" launch --store "$WORK/loop" "${job[@]}" --epochs 2 >"$WORK/loop.log" 2>&1 ||
  { cat "$WORK/loop.log"; exit 1; }

echo "== 1. the same job over three hosts"
"$DDPIPE" ingest --store "$WORK/hosts" "${job[@]}" >/dev/null 2>&1
PIDS=()
for r in 0 1 2; do start_rank "$WORK/hosts" "$r" hosts --epochs 2; done
for pid in "${PIDS[@]}"; do wait "$pid" || { tail -n 20 "$WORK"/hosts.rank*.log; exit 1; }; done
grep -q "gloo interface chosen by route to the master" "$WORK/hosts.rank2.log" ||
  { echo "FAIL: rank 2 did not log its Gloo interface"; exit 1; }
grep -q "\"address\":\"$NET.3\"" "$WORK/hosts.rank2.log" ||
  { echo "FAIL: rank 2 must use its own address $NET.3"; grep gloo "$WORK/hosts.rank2.log"; exit 1; }
a=$(weights_of "$WORK/loop"); b=$(weights_of "$WORK/hosts")
[[ "$a" == "$b" ]] || { echo "FAIL: weights differ: loopback $a, hosts $b"; exit 1; }
echo "ok: identical weights over loopback and over hosts ($a)"

echo "== 2. cut rank 2's link mid-training"
"$DDPIPE" ingest --store "$WORK/cut" "${job[@]}" >/dev/null 2>&1
PIDS=()
timeouts=(--set dist.timeout_s=8 --set dist.heartbeat_timeout_s=4 --epochs 30)
for r in 0 1 2; do start_rank "$WORK/cut" "$r" cut "${timeouts[@]}"; done
for _ in $(seq 1 600); do
  ls "$WORK"/cut/models/mh/checkpoints/epoch_1/state.json >/dev/null 2>&1 && break
  sleep 0.1
done
[[ -f "$WORK/cut/models/mh/checkpoints/epoch_1/state.json" ]] ||
  { echo "FAIL: no checkpoint before the cut"; tail -n 5 "$WORK"/cut.rank*.log; exit 1; }
ip link set "${P}v2" down
cut_at=$(date +%s)
codes=()
for pid in "${PIDS[@]}"; do
  code=0; wait "$pid" || code=$?
  codes+=("$code")
done
elapsed=$(( $(date +%s) - cut_at ))
echo "exit codes after the cut: ${codes[*]} (all within ${elapsed}s)"
for c in "${codes[@]}"; do
  [[ "$c" -ge 128 ]] || { echo "FAIL: a rank exited $c, expected a retryable code >= 128"; tail -n 5 "$WORK"/cut.rank*.log; exit 1; }
done
[[ $elapsed -le 60 ]] || { echo "FAIL: ranks took ${elapsed}s to notice the cut"; exit 1; }
grep -hE "lost|failed" "$WORK"/cut.rank*.log | grep -q "rank 2 ($NET.3)\|$MASTER:29631" ||
  { echo "FAIL: no message names the lost rank or the master"; tail -n 3 "$WORK"/cut.rank*.log; exit 1; }
grep -h '"level":"error"' "$WORK"/cut.rank*.log | head -n 3

echo "== 2. link restored: the group restarts and completes from its last checkpoint"
ip link set "${P}v2" up
sleep 1
PIDS=()
for r in 0 1 2; do start_rank "$WORK/cut" "$r" cut --epochs 3; done
for pid in "${PIDS[@]}"; do wait "$pid" || { tail -n 20 "$WORK"/cut.rank*.log; exit 1; }; done
grep -q "resuming from checkpoint" "$WORK/cut.rank0.log" ||
  { echo "FAIL: the restarted group did not resume"; exit 1; }
ls "$WORK"/cut/models/mh/model_v*/manifest.json >/dev/null
echo "ok: completed after the cut"
echo "netns: 2 passed, 0 failed"
