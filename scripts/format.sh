#!/usr/bin/env bash
# Formats the git-tracked C++ sources (*.cpp, *.h) with clang-format 14 and the root .clang-format.
#   scripts/format.sh          format them in place
#   scripts/format.sh --check  change nothing; print the files that differ, exit 1 if any
# clang-format-14 is in the test packages (scripts/install-deps.sh --tests). CLANG_FORMAT names
# another binary (its output may differ from version 14's).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac
cf=${CLANG_FORMAT:-}
if [[ -z $cf ]]; then
  for c in clang-format-14 clang-format; do
    if command -v "$c" >/dev/null; then cf=$c; break; fi
  done
fi
[[ -n $cf ]] || { echo "format: clang-format not found (scripts/install-deps.sh --tests)" >&2; exit 2; }

mapfile -d '' files < <(git ls-files -z -- '*.cpp' '*.h')
if [[ $check == 0 ]]; then
  printf '%s\0' "${files[@]}" | xargs -0 -r -n 16 "$cf" -i --style=file
  exit 0
fi
differ=()
for f in "${files[@]}"; do
  if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
    differ+=("$f")
  fi
done
if [[ ${#differ[@]} -gt 0 ]]; then
  printf '%s\n' "${differ[@]}"
  echo "format: ${#differ[@]} of ${#files[@]} files differ from $cf's formatting (scripts/format.sh fixes them)" >&2
  exit 1
fi
echo "format: ${#files[@]} files formatted"
