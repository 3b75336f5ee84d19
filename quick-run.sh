#!/usr/bin/env bash
# One command: install the Debian packages, build, and run the default job (real Fashion-MNIST,
# 2 local ranks, local store ./artifacts). Extra arguments go to `ddpipe run`, e.g.
#   ./quick-run.sh --epochs 3
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/build.sh ddpipe
exec build/apps/ddpipe/ddpipe run "$@"
