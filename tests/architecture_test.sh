#!/usr/bin/env bash
# Fails when a component includes a header of a component above it (docs/ARCHITECTURE.md), or
# when a component that must stay libtorch-free includes torch.
set -euo pipefail
src="$(cd "$(dirname "$0")/../src" && pwd)"
declare -A allowed=(
  [core]=""
  [storage]="core"
  [registry]="core storage"
  [data]="core storage"
  [model]="core"
  [dist]="core"
  [netns]="core"
  [k8s]="core netns"
  [eval]="core storage registry data model"
  [train]="core storage registry data model dist eval"
  [serve]="core storage registry data model eval"
)
no_torch="core storage registry netns k8s"
status=0
for comp in "${!allowed[@]}"; do
  [[ -d "$src/$comp" ]] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    dep=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"$line")
    [[ "$dep" == "$comp" ]] && continue
    if [[ " ${allowed[$comp]} " != *" $dep "* ]]; then
      echo "layering violation: $file includes $dep/ (allowed for $comp: ${allowed[$comp]:-nothing})"
      status=1
    fi
  done < <(grep -HE '^#include "[a-z_]+/' "$src/$comp"/*.h "$src/$comp"/*.cpp 2>/dev/null || true)
  if [[ " $no_torch " == *" $comp "* ]] && grep -lE '#include <(torch|ATen|c10)/' "$src/$comp"/* 2>/dev/null; then
    echo "$comp must not include libtorch headers"
    status=1
  fi
done
[[ $status -eq 0 ]] && echo "architecture: all includes point down"
exit $status
