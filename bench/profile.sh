#!/usr/bin/env bash
# Where the training time goes (issue 21): for each case of bench/bench.py, runs ddpipe's training
# with exactly bench.py's command line (bench.py --print-cmd CASE: synthetic 3x32x32 data, batch
# 128 per rank, 2 ranks, the case's model and precision) under `perf record -a` (all CPUs, so that
# idle time and other processes on the 2 cores show too), for a bounded number of steps. It then
# sorts the samples of ddpipe's processes taken during the steady-state steps (the steps after
# the first 5, timed from ddpipe's own progress log) into categories with
# bench/profile_summary.py (`perf report --no-children --sort dso,symbol`): conv/GEMM kernels,
# batch norm, elementwise/activation, copies/reorders, optimizer, allocator, communication, data
# loading, waiting/idle, other. Per case it prints the table, the top 10 symbols, ddpipe's
# steady images/s under perf, its share of the FMA peak (model FLOPs per image from bench.py x
# images/s over the peak of ../shared/peers/fma_peak.c, as bench.py's MFU column)
# and the images/s that the peak would allow; at the end one Markdown table of every case.
#
# oneDNN's JIT kernels have no symbols of their own: the ranks run with DNNL_JIT_PROFILE=2, so
# oneDNN writes /tmp/perf-PID.map and perf names the kernels (the maps are moved into the output
# directory afterwards). JIT addresses perf still cannot name count as conv/GEMM kernels. Debian
# strips libtorch_cpu.so's internal symbols, so most ATen CPU kernels are bare addresses: before
# the cases, a calibration run executes each ATen op the ResNets use alone under perf (python3-torch,
# the same libtorch_cpu.so) and labels every libtorch function it samples with that op's category.
#
# Usage (as root):
#   bench/profile.sh                                          # every case, about 2.5 minutes
#   bench/profile.sh --cases resnet18 --steps 20              # one case, quick
#   bench/profile.sh --out /tmp/prof --json profile.json      # keep perf.data and logs in /tmp/prof
#   perf report -i /tmp/prof/resnet18/perf.data --no-children --sort dso,symbol   # look further
#     (first copy /tmp/prof/resnet18/jit-maps/perf-*.map back to /tmp to see oneDNN's kernel names;
#     `bench/profile_summary.py summarize --jit-maps DIR ...` does that itself, see its --help)
# Options: --cases LIST (comma-separated bench.py cases; default: all of them), --steps N (train
#   steps per rank; default 40 for resnet18, 12 for the CIFAR-layout cases, whose steps are 15x
#   longer), --freq HZ (sampling frequency, 499), --no-callgraph (perf record without -g),
#   --peak GFLOPS (skip measuring the FMA peak), --no-calibrate, --out DIR (default: a new
#   /tmp/ddpipe-profile-XXXXXX, kept), --json FILE (every case's summary), --keep-work (keep each
#   case's store and cache; deleted by default).
# Environment: DDPIPE_BINARY (the ddpipe binary, as for bench.py; build/apps/ddpipe/ddpipe).
# Needs root (or kernel.perf_event_paranoid <= -1) for perf record -a, perf (linux-perf), readelf,
# gcc (for fma_peak.c), and python3-torch for the calibration (without it the unnamed libtorch
# addresses stay in "other"). Prints SKIP and exits 0 without perf or the permission.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
PERF=${PERF:-/usr/bin/perf}

CASES=""
STEPS=""
FREQ=499
CALLGRAPH=(-g)
PEAK=""
CALIBRATE=1
OUT=""
JSON=""
KEEP_WORK=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --cases) CASES=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --freq) FREQ=$2; shift 2 ;;
    --no-callgraph) CALLGRAPH=(); shift ;;
    --peak) PEAK=$2; shift 2 ;;
    --no-calibrate) CALIBRATE=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    --keep-work) KEEP_WORK=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ ! -x $PERF ]]; then echo "SKIP: no perf at $PERF (apt-get install linux-perf)"; exit 0; fi
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)
if [[ $(id -u) -ne 0 && $paranoid -gt -1 ]]; then
  echo "SKIP: perf record -a needs root or kernel.perf_event_paranoid <= -1"; exit 0
fi
[[ -n $CASES ]] || CASES=$($PY -c 'import sys; sys.path.insert(0, "bench"); import bench; print(",".join(bench.CASES))')
BIN=$($PY -c 'import sys; sys.path.insert(0, "bench"); import bench; print(bench.DDPIPE)')
[[ -x $BIN ]] || { echo "profile: build ddpipe first ($BIN missing; or set DDPIPE_BINARY)" >&2; exit 1; }
[[ -n $OUT ]] || OUT=$(mktemp -d /tmp/ddpipe-profile-XXXXXX)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "profile: ddpipe $BIN, output in $OUT" >&2

WORKS=()
cleanup() {
  if [[ $KEEP_WORK -eq 0 ]]; then
    local w
    for w in "${WORKS[@]}"; do rm -rf "$w"; done
  fi
}
trap cleanup EXIT

# The FMA peak of the 2 cores, as bench.py measures it (fma_peak.c, 2 threads), or twice the
# 1-thread figure if that is higher: on a shared machine another process holding a core pulls
# the 2-thread run down, not the 1-thread one.
if [[ -z $PEAK ]]; then
  PEAK=$($PY -c 'import sys; sys.path.insert(0, "bench"); import bench
two, one = bench.peak_gflops(2) or 0, bench.peak_gflops(1) or 0
print("%.1f" % max(two, 2 * one))
print(f"profile: fp32 FMA peak: 2 threads {two:.1f} GFLOP/s, 1 thread {one:.1f} GFLOP/s (fma_peak.c)", file=sys.stderr)')
  echo "profile: the 2 cores' peak taken as $PEAK GFLOP/s" >&2
fi

# Calibration: which unnamed libtorch functions each ATen op runs.
CALIB=""
if [[ $CALIBRATE -eq 1 ]] && $PY -c 'import torch' 2>/dev/null; then
  echo "profile: calibrating libtorch's unnamed kernels (each ATen op alone under perf)" >&2
  "$PERF" record -q -F 1999 -k CLOCK_REALTIME -o "$OUT/calibration.data" -- \
    "$PY" bench/profile_summary.py calibrate-workload "$OUT/calibration-marks.json" \
    >"$OUT/calibration.log" 2>&1
  "$PY" bench/profile_summary.py calibrate "$OUT/calibration.data" "$OUT/calibration-marks.json" \
    "$OUT/calibration.json"
  CALIB=$OUT/calibration.json
elif [[ $CALIBRATE -eq 1 ]]; then
  echo "profile: no python3-torch: unnamed libtorch addresses stay in 'other'" >&2
fi

SUMMARIES=()
IFS=, read -r -a CASE_LIST <<<"$CASES"
for case in "${CASE_LIST[@]}"; do
  steps=$STEPS
  if [[ -z $steps ]]; then
    if [[ $case == resnet18 ]]; then steps=40; else steps=12; fi
  fi
  dir=$OUT/$case
  work=$dir/work
  rm -rf "$dir"
  mkdir -p "$dir/jit-maps"
  WORKS+=("$work")
  # bench.py's own command line, one argument a line, then '# gflop_per_image G'.
  "$PY" bench/bench.py --print-cmd "$case" --batches "$steps" --work "$work" >"$dir/cmd.txt"
  mapfile -t CMD < <(grep -v '^#' "$dir/cmd.txt")
  gflop=$(sed -n 's/^# gflop_per_image //p' "$dir/cmd.txt")
  echo "profile: $case, $steps steps per rank: ${CMD[*]}" >&2
  marker=$dir/.start
  touch "$marker"
  DNNL_JIT_PROFILE=2 ONEDNN_JIT_PROFILE=2 DDPIPE_LOG_LEVEL=info \
    "$PERF" record -q -F "$FREQ" "${CALLGRAPH[@]}" -a -k CLOCK_REALTIME -o "$dir/perf.data" -- \
    bash -c 'echo $$ >"$0"; exec "$@"' "$dir/ddpipe.pid" "${CMD[@]}" \
    >"$dir/ddpipe.out" 2>"$dir/ddpipe.log" ||
    { echo "profile: $case failed; see $dir/ddpipe.log" >&2; tail -5 "$dir/ddpipe.log" >&2; exit 1; }
  "$PY" bench/profile_summary.py summarize --perf-data "$dir/perf.data" --log "$dir/ddpipe.log" \
    --calibration "$CALIB" --case "$case" --root-pid "$(cat "$dir/ddpipe.pid")" --gflop-per-image "$gflop" --peak-gflops "$PEAK" \
    --freq "$FREQ" --json "$dir/summary.json" | tee "$dir/summary.txt"
  SUMMARIES+=("$dir/summary.json")
  # oneDNN's perf maps of this run, out of /tmp.
  find /tmp -maxdepth 1 -name 'perf-*.map' -newer "$marker" -exec mv {} "$dir/jit-maps/" \;
  rm -f "$marker"
  if [[ $KEEP_WORK -eq 0 ]]; then rm -rf "$work"; fi
done

echo
echo "## all cases (% of ddpipe's samples in the steady-state steps)"
"$PY" bench/profile_summary.py table "${SUMMARIES[@]}" | tee "$OUT/table.md"
if [[ -n $JSON ]]; then
  "$PY" -c 'import json, sys; json.dump([json.load(open(p)) for p in sys.argv[2:]], open(sys.argv[1], "w"), indent=1)' \
    "$JSON" "${SUMMARIES[@]}"
fi
echo "profile: ok ($OUT)"
