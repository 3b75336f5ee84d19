#!/usr/bin/env bash
# The whole training benchmark suite of BENCHMARKS.md, in one run (about 50 minutes on the 2-core
# build machine; run it on an idle machine):
#   1. bench/bench.py             throughput, ddpipe against the PyTorch DDP peer, alternating
#   2. bench/time_to_accuracy.py  Fashion-MNIST: ddpipe's default job against the peer's recipe
#   3. bench/scaling.sh           two ranks in network namespaces on shaped links, once per
#                                 gradient compression mode (root only)
#   4. bench/profile.sh           where each bench.py case spends its time (root only: perf -a)
#   5. bench/compression_accuracy.py  Fashion-MNIST accuracy per compression mode, two seeds
# Usage: bench/suite.sh [OUT_DIR]   (default bench-results/<timestamp>; JSON and logs go there)
# Environment: REPS (throughput repetitions, default 1), DDPIPE_BINARY.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results/$(date -u +%Y%m%d_%H%M%S)}
mkdir -p "$OUT"
REPS=${REPS:-1}
start=$(date +%s)
stage() {  # name command...
  local name=$1 t0
  shift
  t0=$(date +%s)
  echo "== $name: $*" | tee -a "$OUT/suite.log"
  "$@" 2>&1 | tee "$OUT/$name.txt"
  echo "== $name took $(( $(date +%s) - t0 )) s" | tee -a "$OUT/suite.log"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
  | tee "$OUT/suite.log"
stage throughput /usr/bin/python3 bench/bench.py --reps "$REPS" --json "$OUT/throughput.json"
stage time_to_accuracy /usr/bin/python3 bench/time_to_accuracy.py --json "$OUT/time_to_accuracy.json"
if [[ $(id -u) -eq 0 ]]; then
  stage scaling bench/scaling.sh --cases loopback,10gbit,1gbit,1gbit-1ms \
    --compression none,bf16,fp16,powersgd --json "$OUT/scaling.json"
  stage profile bench/profile.sh --out "$OUT/profile" --json "$OUT/profile.json"
else
  echo "== scaling, profile: skipped (need root for network namespaces and perf -a)" \
    | tee -a "$OUT/suite.log"
fi
stage compression_accuracy /usr/bin/python3 bench/compression_accuracy.py \
  --json "$OUT/compression_accuracy.json"
echo "== suite took $(( $(date +%s) - start )) s; results in $OUT" | tee -a "$OUT/suite.log"
