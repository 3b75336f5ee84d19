#!/usr/bin/env bash
# Installs every Debian 12 package ddpipe needs to build, test and run. Idempotent; needs root
# (or sudo). Set DDPIPE_SKIP_APT=1 to skip when the packages are known to be there.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libgloo-dev                       # libtorch 1.13 C++ API with c10d + Gloo
  libdnnl-dev                                    # oneDNN sgemm (Debian's libtorch BLAS is the reference one)
  libyaml-cpp-dev nlohmann-json3-dev             # config, manifests
  libssl-dev libcurl4-openssl-dev libarchive-dev zlib1g-dev
  libpng-dev libjpeg62-turbo-dev                 # image decoding
  libgoogle-perftools-dev                        # tcmalloc: 2x libtorch throughput vs glibc malloc
  googletest libgtest-dev                        # tests
  dataset-fashion-mnist                          # the real Fashion-MNIST for the default job
  python3-torch python3-numpy                    # tests compare against Python's DistributedSampler
  python3-torchvision python3-pil                # tests: models open in torchvision (issue 15)
  iproute2 procps
  ceph-mon ceph-osd radosgw ceph-common ceph-base curl  # S3 tests: a local Ceph RADOS Gateway
  python3-boto3                                  # S3 tests and bench: boto3 on the other side
  libcpp-httplib-dev                             # serve: HTTP server (also in deploy/docker/Dockerfile)
  clang libclang-rt-14-dev                       # serve: the libFuzzer test (ASan, UBSan)
  wrk python3-flask gunicorn python3-torchvision python3-pil  # bench/serve_bench.sh: load, Python peer
  python3-jsonschema python3-yaml                # k8s tests: manifests against Kubernetes schemas
)

if [[ "${DDPIPE_SKIP_APT:-0}" == "1" ]]; then
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
