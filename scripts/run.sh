#!/usr/bin/env bash
# Quick start, first command: set up, build, and run the main job (vitte-sched run) on its
# default input, /usr/include. Extra arguments go to `vitte-sched run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh build -Dbuildtype=release >/dev/null
./build/src/vitte-sched topo
exec ./build/src/vitte-sched run "$@"
