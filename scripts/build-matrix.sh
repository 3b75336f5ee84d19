#!/usr/bin/env bash
# The builds users make besides scripts/build.sh's (Ninja, with the tests), each from a source
# tree without .git (`git archive` of HEAD, as a release tarball is):
#  1. CMake's default generator (Unix Makefiles), with the tests and clang: the targets that
#     custom commands produce (fuzzers: Make, unlike Ninja, creates no output folder; the
#     dashboard's embedded files), and the source revision manifests get without git.
#  2. Ninja, -DDDPIPE_BUILD_TESTS=OFF, clang hidden: the ddpipe binary, which then runs.
#  3. With the tests and clang hidden: configures (no fuzz targets, saying why).
# Usage: scripts/build-matrix.sh [WORK_DIR]   (default: a temporary folder, removed after)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
[[ $# -gt 0 ]] || trap 'rm -rf "$work"' EXIT
jobs=${DDPIPE_JOBS:-$(nproc)}
src=$work/src
rm -rf "$src" && mkdir -p "$src"
git archive --format=tar HEAD | tar -x -C "$src"
step() { echo "== build-matrix: $* ($(date +%T))"; }

step "1. Unix Makefiles, tests on, clang: custom-command targets"
cmake -S "$src" -B "$work/make" -DCMAKE_BUILD_TYPE=Release >"$work/make.log"
grep -q '^CMAKE_GENERATOR:INTERNAL=Unix Makefiles$' "$work/make/CMakeCache.txt"
cmake --build "$work/make" -j "$jobs" --target core_config_fuzzer storage_s3_xml_fuzzer ddpipe_ui
test -x "$work/make/tests/core/fuzz/bin/core_config_fuzzer"
grep -rq 'DDPIPE_GIT_REVISION=.*no git revision' "$work/make/src/train" ||
  { echo "build-matrix: the source revision of a tree without .git does not say so" >&2; exit 1; }

step "2. Ninja, DDPIPE_BUILD_TESTS=OFF, no clang: ddpipe"
cmake -S "$src" -B "$work/notests" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDDPIPE_BUILD_TESTS=OFF \
  -DDDPIPE_CLANGXX=DDPIPE_CLANGXX-NOTFOUND >"$work/notests.log"
cmake --build "$work/notests" -j "$jobs" --target ddpipe
"$work/notests/apps/ddpipe/ddpipe" config show --config synthetic-bench | grep -qx 'name: synthetic-resnet18'

step "3. tests on, no clang: configures without fuzz targets"
cmake -S "$src" -B "$work/noclang" -G Ninja -DDDPIPE_CLANGXX=DDPIPE_CLANGXX-NOTFOUND >"$work/noclang.log"
grep -q 'fuzz: clang++ not found, no fuzz tests' "$work/noclang.log"
step "all builds passed"
