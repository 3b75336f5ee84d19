#!/usr/bin/env bash
# Builds ddpipe's Debian package, build/ddpipe_<version>_amd64.deb (cmake/DdpipePackage.cmake):
# the Release binary, the shipped configs and the docs under /usr, its Depends computed from the
# binary by dpkg-shlibdeps. Install it on each machine with `sudo apt install ./build/ddpipe_*.deb`.
#   scripts/package.sh    needs what ./quick-run.sh installs (scripts/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${DDPIPE_BUILD_DIR:-build}
scripts/build.sh --no-tests ddpipe
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$build"
rm -rf "$build/_CPack_Packages"
ls "$build"/ddpipe_*_amd64.deb
