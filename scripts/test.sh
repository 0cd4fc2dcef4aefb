#!/bin/sh
# The whole test suite: installs dependencies, builds the release tree and a
# tree with AddressSanitizer + UndefinedBehaviorSanitizer, runs CTest in both.
set -e
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs")
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDDPS_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ctest --output-on-failure -j "$jobs")
echo "all tests passed (release and sanitizer builds)"
