#!/bin/sh
# The main job on bundled data: installs dependencies, builds ddps, and runs
# `ddps demo`: 300 pictures of the toy world (objects with known boxes) made on
# the spot, distilled with the toy model data/toy-sd into ddps-demo/distilled,
# the report ddps-demo/report/index.html, and the pointing game's score as the
# last lines. Extra arguments go to `ddps demo`.
set -e
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target ddps
exec build/ddps demo "$@"
