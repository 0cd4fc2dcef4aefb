#!/bin/sh
# The whole test suite: installs dependencies, builds the release tree and a
# tree with AddressSanitizer + UndefinedBehaviorSanitizer, runs CTest in both.
# Where the CUDA toolkit is installed (/usr/local/cuda), the CUDA backend is
# also compiled and its tests run (they are reported as skipped without a GPU).
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
if [ -x /usr/local/cuda/bin/nvcc ]; then
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DDDPS_CUDA=ON \
        -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc >/dev/null
  cmake --build build-cuda -j "$jobs" --target ddps test_cuda
  (cd build-cuda && ctest --output-on-failure -R '^test_cuda$')
fi
echo "all tests passed (release and sanitizer builds)"
