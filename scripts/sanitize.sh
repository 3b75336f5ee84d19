#!/usr/bin/env bash
# Builds ddpipe's tests under a sanitizer, in a build directory of their own, and runs them
# (.ci/run does both after the main tests).
#   scripts/sanitize.sh asan [ctest args…]  AddressSanitizer + UndefinedBehaviorSanitizer, the
#                                           unit tests, in build-asan/
#   scripts/sanitize.sh tsan [ctest args…]  ThreadSanitizer, the tests of ddpipe's own threads,
#                                           in build-tsan/
# Only the test executables run here are built (-O1, no fuzz targets: cmake/DdpipeSanitize.cmake).
# Any finding fails its test. There are no suppressions: a finding in ddpipe is fixed; how
# third-party code is left out is said below at each *_OPTIONS. DDPIPE_JOBS: build jobs (nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

# ASan + UBSan: every unit-labelled test executable, and the binary that cli_test and the k8s
# manifest tests run (so the command line is checked too).
asan_targets=(core_test supervisor_test storage_test registry_test shards_test data_test
  data_shards_test model_test dist_test netns_test k8s_test telemetry_test runs_test report_test
  ui_test eval_test train_test serve_request_test serve_engine_test cli_test ddpipe)
# Left out: the scripts that check the source tree (nothing compiled for a sanitizer to see),
# and Launcher.OsFailureIsASystemError, whose child has no file descriptor left: UBSan's vptr
# check opens a pipe to probe memory, so there it calls the core::Error being constructed
# invalid (a limit of the sanitizer runtime; the test runs in the normal build).
asan_exclude='^(architecture|architecture_doc|function_length|Launcher\.OsFailureIsASystemError)$'

# TSan: the tests whose concurrency is ddpipe's own —
#   data_test            the batch loader's worker threads (LoaderTest; not the throughput test:
#                        TSan's slowdown is not what it measures)
#   data_shards_test     the sharded source: shard prefetch threads feeding the loader
#   shards_test          the shard cache: prefetch and two caches sharing one folder
#   serve_engine_test    the batcher (requests from many threads, model versions) and the model
#                        host's hot swap
#   serve_server_test    the HTTP server in-process: concurrent requests, hot reload under load,
#                        draining, slow clients (not ServeCli: it runs the ddpipe binary)
#   runs_test            the run tracker's background writer
#   dist_integration_test  data-parallel training over real Gloo groups, one thread per rank:
#                        gradient buckets reduced while backward runs
tsan_targets=(data_test data_shards_test shards_test serve_engine_test serve_server_test
  runs_test dist_integration_test)
tsan_tests='LoaderTest\.|ShardSource\.|ShardCache\.|BatchedEqualsUnbatched|Batcher\.|ModelHost\.'
tsan_tests+='|ServeTest\.|ServeNotReady\.|RunTracker\.|DataParallel\.|Communicator\.'

usage() {
  echo "usage: scripts/sanitize.sh asan|tsan [ctest args…]" >&2
  exit 2
}

# configure DIR SANITIZERS: a Release tree with the sanitizer, the tests, no fuzz targets.
configure() {
  if [[ ! -f "$1/build.ninja" ]]; then
    cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDDPIPE_BUILD_TESTS=ON \
      -DDDPIPE_BUILD_FUZZ=OFF -DDDPIPE_TCMALLOC=OFF -DDDPIPE_SANITIZE="$2"
  fi
}

# build_and_test DIR SANITIZERS TARGETS… -- CTEST_ARGS…
build_and_test() {
  local dir=$1 sanitizers=$2
  shift 2
  local targets=()
  while [[ $1 != -- ]]; do
    targets+=("$1")
    shift
  done
  shift
  configure "$dir" "$sanitizers"
  local t0=$SECONDS
  cmake --build "$dir" -j "${DDPIPE_JOBS:-$(nproc)}" --target "${targets[@]}"
  echo "sanitize: $sanitizers build took $((SECONDS - t0)) s"
  t0=$SECONDS
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j "${DDPIPE_TEST_JOBS:-2}" "$@")
  echo "sanitize: $sanitizers tests took $((SECONDS - t0)) s"
}

[[ $# -ge 1 ]] || usage
mode=$1
shift
case $mode in
  asan)
    # The options are set before the build too: gtest_discover_tests runs each executable.
    export ASAN_OPTIONS=detect_leaks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    build_and_test "${DDPIPE_ASAN_DIR:-build-asan}" address,undefined "${asan_targets[@]}" -- \
      -L unit -E "$asan_exclude" "$@"
    ;;
  tsan)
    # One intra-op thread: libtorch's OpenMP workers synchronise in libgomp, which TSan cannot
    # see (not instrumented), so every tensor they touch would be a false race. ddpipe's own
    # threads are unchanged. (serve::Server sets its own count; the option below covers it.)
    export OMP_NUM_THREADS=1
    # ignore_noninstrumented_modules: the memcpy/malloc/free that Debian's libtorch, oneDNN,
    # gloo and cpp-httplib make are not checked (their plain loads and stores never are), while
    # their mutexes still order ddpipe's accesses. Without it, objects those libraries create
    # lazily and publish through inlined guards TSan cannot see (libtorch's default generator,
    # oneDNN's primitive cache, cpp-httplib's statics) are reported as races on first use from a
    # second thread. Every access compiled from ddpipe's code is still checked.
    export TSAN_OPTIONS=ignore_noninstrumented_modules=1:second_deadlock_stack=1:history_size=4
    build_and_test "${DDPIPE_TSAN_DIR:-build-tsan}" thread "${tsan_targets[@]}" -- \
      -R "$tsan_tests" -E 'Throughput' "$@"
    ;;
  *) usage ;;
esac
