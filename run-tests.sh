#!/usr/bin/env bash
# One command: install the Debian packages, build, and run every test (unit + integration).
#   ./run-tests.sh                 everything
#   ./run-tests.sh -L unit         only the fast unit tests (any ctest arguments work)
#   ./run-tests.sh -L integration  only multi-process / network tests
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/build.sh
cd "${DDPIPE_BUILD_DIR:-build}"
ctest --output-on-failure --timeout 900 -j "${DDPIPE_TEST_JOBS:-2}" "$@"
