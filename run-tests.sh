#!/usr/bin/env bash
# One command: install the Debian packages (ddpipe's and the test stack), build everything, and
# run every test (unit + integration).
#   ./run-tests.sh                 everything
#   ./run-tests.sh -L unit         only the fast unit tests (any ctest arguments work)
#   ./run-tests.sh -L integration  only multi-process / network tests
# The S3 tests run against a local Ceph RADOS Gateway (scripts/s3-test-server.sh): the one that
# DDPIPE_S3_TEST_ENDPOINT names, one already running, or one started (and stopped) here.
# DDPIPE_S3_TESTS=0 leaves them out (ctest -LE s3) and starts no server.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh --tests
scripts/build.sh
s3_args=()
if [[ "${DDPIPE_S3_TESTS:-1}" == 0 ]]; then
  s3_args=(-LE s3)
elif [[ -z "${DDPIPE_S3_TEST_ENDPOINT:-}" ]]; then
  s3_server=$PWD/scripts/s3-test-server.sh
  if ! s3_env=$("$s3_server" env 2>/dev/null); then
    trap '"$s3_server" stop' EXIT
    s3_env=$("$s3_server" start)  # fails the script if it cannot start
  fi
  eval "$s3_env"
fi
cd "${DDPIPE_BUILD_DIR:-build}"
ctest --output-on-failure --timeout 900 -j "${DDPIPE_TEST_JOBS:-2}" "${s3_args[@]}" "$@"
