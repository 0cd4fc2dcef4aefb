#!/bin/sh
# The main job on bundled data: installs dependencies, builds ddps, and runs
# `ddps demo` (a synthetic dataset and a tiny random-weight model made on the
# spot, distilled into ddps-demo/distilled). Extra arguments go to `ddps demo`.
set -e
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target ddps
exec build/ddps demo "$@"
