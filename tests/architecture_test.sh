#!/usr/bin/env bash
# Fails when the code disagrees with src/components.txt, the one table of components: an
# #include of a component not below the includer, libtorch in a component declared without it,
# a CMakeLists.txt whose DEPS differ from the table, or a folder of src/ missing from it
# (docs/ARCHITECTURE.md). The checks are in scripts/architecture.py, which also draws the diagram.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/../scripts/architecture.py" check
