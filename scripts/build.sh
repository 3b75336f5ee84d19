#!/usr/bin/env bash
# Configures and builds ddpipe into build/ (Release, Ninja, ccache).
#   scripts/build.sh [targets…]             with the test suite (needs the test packages:
#                                           scripts/install-deps.sh --tests)
#   scripts/build.sh --no-tests [targets…]  without it: needs only the main packages (quick-run)
# The build directory is configured once; a later build with the tests turns them on in a
# directory configured without (--no-tests leaves a directory that has them as it is).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DDPIPE_BUILD_DIR:-build}
JOBS=${DDPIPE_JOBS:-$(nproc)}
tests=ON
if [[ "${1:-}" == "--no-tests" ]]; then
  tests=OFF
  shift
fi
cached=$(sed -n 's/^DDPIPE_BUILD_TESTS:BOOL=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  # shellcheck disable=SC2086  # DDPIPE_CMAKE_ARGS: several arguments, last so they win
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDDPIPE_BUILD_TESTS=$tests \
    ${DDPIPE_CMAKE_ARGS:-}
elif [[ $tests == ON && $cached != ON ]]; then
  echo "build: $BUILD_DIR was configured without the tests; turning them on"
  cmake -S . -B "$BUILD_DIR" -DDDPIPE_BUILD_TESTS=ON
fi
cmake --build "$BUILD_DIR" -j "$JOBS" ${1:+--target "$@"}
