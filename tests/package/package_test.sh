#!/usr/bin/env bash
# The Debian package (cmake/DdpipePackage.cmake), built from a build directory with CPack and
# checked as a user gets it:
#  1. its file name and control data: ddpipe_<project version>_amd64.deb, and Depends computed
#     from the binary (every shared library the binary needs comes from a package it depends on);
#  2. its contents: the binary, the shipped configs, the docs;
#  3. extracted into a scratch root (dpkg-deb -x), the installed ddpipe runs from there with no
#     checkout around it: --help, `config show --config NAME` finding the shipped config beside
#     the binary, and a one-epoch synthetic run that publishes a model version.
# Usage: package_test.sh BUILD_DIR (configured and built: CPack packs what it installs).
set -euo pipefail
build=$(realpath "${1:?usage: package_test.sh BUILD_DIR}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== 1. build the package: file name and control data"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack -G DEB failed"; }
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
deb=$work/out/ddpipe_${version}_amd64.deb
[[ -f $deb ]] || fail "no $(basename "$deb") in $(ls "$work/out")"
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == ddpipe && $(field Version) == "$version" && $(field Architecture) == amd64 ]] ||
  fail "control: $(dpkg-deb -f "$deb")"
depends=$(field Depends)
echo "Depends: $depends"
# Each library the binary needs (NEEDED), found on this system, belongs to a package in Depends.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./usr/bin/ddpipe
libs=$(ldconfig -p)
for lib in $(objdump -p "$work/usr/bin/ddpipe" | awk '/NEEDED/ {print $2}'); do
  path=$(awk -v l="$lib" '$1 == l && /x86-64/ {print $NF}' <<<"$libs" | head -n 1)
  [[ -n $path ]] || fail "$lib (NEEDED by ddpipe) is not installed here"
  # dpkg knows a library by the path its package installed: /usr/lib/… or /lib/… (merged /usr).
  owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "${path#/usr}" 2>/dev/null ||
    dpkg -S "/usr$path" 2>/dev/null || dpkg -S "$(realpath "$path")") || fail "no package has $path"
  pkg=${owner%%:*}
  [[ ", $depends" == *", $pkg "* || ", $depends," == *", $pkg,"* ]] ||
    fail "$lib comes from $pkg, which Depends does not name"
done

echo "== 2. contents"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/ddpipe ./usr/share/ddpipe/configs/default.yaml \
  ./usr/share/ddpipe/configs/imagenet-resnet18.yaml ./usr/share/doc/ddpipe/README.md \
  ./usr/share/doc/ddpipe/configuration.md; do
  grep -qx "$f" <<<"$contents" || fail "the package has no $f"
done

echo "== 3. the installed ddpipe, run from a scratch root"
dpkg-deb -x "$deb" "$work/root"
ddpipe=$work/root/usr/bin/ddpipe
mkdir "$work/run" && cd "$work/run"
"$ddpipe" --help | grep -q "Usage: ddpipe <command>" || fail "ddpipe --help"
"$ddpipe" config show --config imagenet-resnet18 | grep -qx "name: imagenet-resnet18" ||
  fail "config show --config imagenet-resnet18 did not find the shipped config"
"$ddpipe" run --set data.format=synthetic --set data.train_size=256 --set data.test_size=64 \
  --set train.epochs=1 --set dist.nproc=2 --set store="$work/run/store" \
  --set cache_dir="$work/run/cache" >run.log 2>&1 || { cat run.log; fail "ddpipe run"; }
ls "$work/run/store/models/fmnist-resnet/" | grep -q '^model_v' || fail "no model version published"
echo "PASS: $(basename "$deb")"
