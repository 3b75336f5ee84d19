# shellcheck shell=bash
# Sourced by local_pytorchjob_test.sh and local_trainjob_test.sh: what both need to run a job
# file with `ddpipe launch --from-<kind> FILE` inside a network namespace of the test's own.
#   local_job_init NAME_PREFIX FROM_FLAG   skips (exit 77) without root, iproute2 and setsid;
#                                          sets NS and WORK, writes $WORK/tiny.yaml (a tiny
#                                          synthetic job), cleans up on exit (KEEP_WORK=1 keeps
#                                          the work folder)
#   launch JOB_FILE LOG NETWORK           runs the launcher in $NS, in a process group of its own
#   line_of LOG MSG RANK                  the first JSON log line of MSG from RANK
#   fail MESSAGE                          exits 1 saying why
# Uses $DDPIPE (the binary under test).

fail() { echo "FAIL: $*"; exit 1; }

local_job_init() {
  if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null || ! command -v setsid >/dev/null; then
    echo "SKIP: needs root and iproute2 (network namespaces, veth, bridge)"
    exit 77
  fi
  NS="$1$$"
  FROM_FLAG=$2
  WORK=$(mktemp -d "/tmp/$1-XXXXXX")
  GROUPS_STARTED=()
  trap local_job_cleanup EXIT
  trap 'exit 1' INT TERM
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
}

local_job_cleanup() {
  for pgid in "${GROUPS_STARTED[@]}"; do kill -9 -- "-$pgid" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  [[ -n "${KEEP_WORK:-}" ]] || rm -rf "$WORK"
}

launch() {  # job.yaml log network
  setsid ip netns exec "$NS" "$DDPIPE" launch "$FROM_FLAG" "$1" --pod-network "$3" >"$2" 2>&1 &
  local pid=$!
  GROUPS_STARTED+=("$pid")
  local code=0
  timeout 300 tail --pid="$pid" -f /dev/null || fail "launch did not finish within 300 s"
  wait "$pid" || code=$?
  return "$code"
}

# Every line of a rank carries its rank.
line_of() { grep "\"msg\":\"$2\"" "$1" | grep "\"rank\":$3[,}]" | head -n 1; }
