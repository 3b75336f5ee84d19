#!/usr/bin/env bash
# Installs the Debian 12 packages ddpipe needs. Idempotent; needs root (or sudo).
#   scripts/install-deps.sh          the main set: build ddpipe and run its default job
#                                    (./quick-run.sh)
#   scripts/install-deps.sh --tests  the main set and the test stack: GTest, the S3 test server,
#                                    the Python peers, the fuzzer, the benchmarks, the format
#                                    check (./run-tests.sh, .ci/run)
#   scripts/install-deps.sh --print [--tests]   print the package names and exit
# Set DDPIPE_SKIP_APT=1 to skip when the packages are known to be there.
# Each package is named once, in the set of what needs it (deploy/docker/Dockerfile's build
# stage runs this script too).
set -euo pipefail

# Build ddpipe (CMakeLists.txt, cmake/Dependencies.cmake) and run `ddpipe run`.
MAIN_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  git                                            # the revision in model manifests (src/train)
  file                                           # scripts/package.sh: CPack finds the binaries for dpkg-shlibdeps
  ca-certificates                                # https downloads (data.url, S3 endpoints)
  libtorch-dev libgloo-dev                       # libtorch 1.13 C++ API with c10d + Gloo
  libdnnl-dev                                    # oneDNN sgemm (Debian's libtorch BLAS is the reference one)
  libyaml-cpp-dev nlohmann-json3-dev             # config, manifests
  libcli11-dev                                   # command-line parsing (apps/ddpipe)
  libssl-dev libcurl4-openssl-dev libarchive-dev zlib1g-dev
  libpng-dev libjpeg62-turbo-dev                 # image decoding
  libgoogle-perftools-dev                        # tcmalloc: 2x libtorch throughput vs glibc malloc
  libcpp-httplib-dev                             # serve: HTTP server
  prometheus-cpp-dev                             # telemetry: /metrics of training ranks
  dataset-fashion-mnist                          # the real Fashion-MNIST for the default job
)

# Build and run the tests (tests/, bench/bench.py --smoke) and the benchmarks (bench/).
TEST_PACKAGES=(
  googletest libgtest-dev                        # tests/: GTest (find_package(GTest REQUIRED))
  python3-torch python3-numpy                    # tests compare against Python's DistributedSampler
  iproute2                                       # `ip netns`: netns tests, bench/scaling.sh, local pods
  procps
  ceph-mon ceph-osd radosgw ceph-common ceph-base curl  # S3 tests: a local Ceph RADOS Gateway
  python3-boto3                                  # S3 tests and bench: boto3 on the other side
  clang libclang-rt-14-dev                       # serve: the libFuzzer test (ASan, UBSan)
  wrk python3-flask gunicorn                     # bench/serve_bench.sh: load, the Python peer
  python3-torchvision python3-pil                # the Python peer; models open in torchvision
  python3-jsonschema python3-yaml                # k8s tests: manifests against Kubernetes schemas
  clang-format-14                                # scripts/format.sh --check (.ci/run)
  chromium nodejs                                # tests/ui: the dashboard in a real browser
)
# …and the browser tests' npm packages: tests/ui/browser/package.json, pinned by its
# package-lock.json (npm ci; playwright-core only, it drives Debian's chromium).

tests=0
print=0
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    --print) print=1 ;;
    *) echo "usage: scripts/install-deps.sh [--tests] [--print]" >&2; exit 2 ;;
  esac
done
PACKAGES=("${MAIN_PACKAGES[@]}")
if [[ $tests == 1 ]]; then
  PACKAGES+=("${TEST_PACKAGES[@]}")
fi
if [[ $print == 1 ]]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

if [[ "${DDPIPE_SKIP_APT:-0}" == "1" ]]; then
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# apt-get as root, or through sudo (only asked for when something is missing).
apt_get() {
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
    sudo="sudo"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get "$@"
}
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ $tests == 1 ]]; then
  # Debian's nodejs comes without npm (NodeSource's includes it).
  command -v npm >/dev/null || apt_get install -y -qq --no-install-recommends npm
  browser_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/ui/browser"
  npm ci --prefix "$browser_tests" --no-audit --no-fund --loglevel=error
  echo "install-deps: npm packages of $browser_tests installed"
fi
