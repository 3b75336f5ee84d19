#!/usr/bin/env bash
# Configures and builds ddpipe into build/ (Release, Ninja, ccache). Usage: scripts/build.sh [targets…]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DDPIPE_BUILD_DIR:-build}
JOBS=${DDPIPE_JOBS:-$(nproc)}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${DDPIPE_CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j "$JOBS" ${1:+--target "$@"}
