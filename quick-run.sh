#!/usr/bin/env bash
# One command: install the Debian packages ddpipe needs (not the test stack: see
# scripts/install-deps.sh), build ddpipe (without the tests), and run the default job (real
# Fashion-MNIST, 2 local ranks, local store ./artifacts). Extra arguments go to `ddpipe run`, e.g.
#   ./quick-run.sh --epochs 3
# With --k8s, the same job on a Kubernetes cluster instead, with whichever Kubeflow operator the
# cluster has: the training operator v1.8 (PyTorchJob) or Trainer v2.3 (TrainJob); it says which
# (scripts/k8s-quick-run.sh; README, section Kubernetes).
set -euo pipefail
cd "$(dirname "$0")"
[[ "${1:-}" == "--k8s" ]] && exec scripts/k8s-quick-run.sh "${@:2}"
scripts/install-deps.sh
scripts/build.sh --no-tests ddpipe
exec "${DDPIPE_BUILD_DIR:-build}"/apps/ddpipe/ddpipe run "$@"
