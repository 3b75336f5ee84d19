#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time over its committed seeds and the corpus it grew in
# WORK_DIR, plus the given subdirectories of the shared test data (../shared/testdata, or
# $DDPIPE_SHARED_DIR/testdata) that exist. Fails on any finding; crashing inputs are left in
# WORK_DIR. Usage: run_fuzz.sh FUZZER SEED_DIR WORK_DIR SOURCE_DIR [SECONDS [SHARED_SUBDIR...]]
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 source=$4 seconds=${5:-45}
shift $(($# < 5 ? $# : 5))
mkdir -p "$work/corpus"
dirs=("$work/corpus" "$seeds")
shared=${DDPIPE_SHARED_DIR:-$source/../shared}
for d in "$@"; do
  [[ -d "$shared/testdata/$d" ]] && dirs+=("$shared/testdata/$d")
done
[[ $# -gt 0 && ${#dirs[@]} -eq 2 ]] && echo "fuzz: $shared/testdata not found, seeds only"
# -rss_limit_mb catches leaks (LeakSanitizer names them at exit). ASan's defaults hold freed
# memory for long (a 256 MB quarantine, memory returned to the OS rarely): over a million decoded
# images that alone took RSS past 2 GB with 25 MB live (an idle CI machine runs ~35k inputs/s).
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_release_to_os_interval_ms=500:quarantine_size_mb=64}
# -malloc_limit_mb: one allocation beyond it is a finding (a header that declares a huge tensor).
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
  -print_final_stats=1 -artifact_prefix="$work/" "${dirs[@]}"
