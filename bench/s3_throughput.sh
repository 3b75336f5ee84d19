#!/usr/bin/env bash
# S3 transfer benchmark: `ddpipe store cp` against boto3's upload_file/download_file on the
# same server (see bench/s3_throughput.py). Uses the S3 test server named by
# DDPIPE_S3_TEST_ENDPOINT, else one already running, else starts one (and stops it after).
#   bench/s3_throughput.sh [--size-mib 200] [--reps 5] [--set s3.part_size_mb=16 …]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DDPIPE_BUILD_DIR:-build}
[[ -x $BUILD_DIR/apps/ddpipe/ddpipe ]] || scripts/build.sh ddpipe
if [[ -z "${DDPIPE_S3_TEST_ENDPOINT:-}" ]]; then
  server=$PWD/scripts/s3-test-server.sh
  if ! s3_env=$("$server" env 2>/dev/null); then
    trap '"$server" stop' EXIT
    s3_env=$("$server" start)
  fi
  eval "$s3_env"
fi
/usr/bin/python3 bench/s3_throughput.py --ddpipe "$BUILD_DIR/apps/ddpipe/ddpipe" "$@"
