#!/bin/sh
# The whole test suite: installs dependencies, builds the release tree and a
# tree with AddressSanitizer + UndefinedBehaviorSanitizer, runs CTest in both.
# Where the CUDA toolkit is installed (/usr/local/cuda), the CUDA backend is
# also compiled and its tests run (they are reported as skipped without a GPU).
#
# The last line totals every CTest run, e.g. "ddps: 62 passed, 0 failed, 5 skipped";
# a skipped test (exit 77: no GPU, no bf16 unit, ...) is counted as skipped, never
# as passed. Exits non-zero if any test failed or if no test ran at all.
set -e
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
jobs=$(nproc 2>/dev/null || echo 2)
passed=0 failed=0 skipped=0

# run_ctest DIR [ctest args]: runs CTest in DIR, keeps its log in DIR/ctest.log,
# adds its counts to the totals, and fails the script after counting if a test failed.
run_ctest() {
  dir=$1; shift
  rc=0
  (cd "$dir" && ctest --output-on-failure "$@") >"$dir/ctest.log" 2>&1 || rc=$?
  cat "$dir/ctest.log"
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$dir/ctest.log" | tail -1)
  nfail=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$dir/ctest.log" | tail -1)
  nskip=$(grep -c '(Skipped)$' "$dir/ctest.log" || true)
  if [ -z "$total" ]; then
    echo "test.sh: no CTest summary in $dir/ctest.log" >&2
    exit 1
  fi
  passed=$((passed + total - nfail - nskip))
  failed=$((failed + nfail))
  skipped=$((skipped + nskip))
  if [ "$rc" -ne 0 ]; then
    echo "ddps: $passed passed, $failed failed, $skipped skipped (stopped at $dir)"
    exit 1
  fi
}

# The CUDA tree first (its tests skip without a GPU), so that the last CTest
# summary printed is the full sanitizer run's, not a run of skipped tests only.
if [ -x /usr/local/cuda/bin/nvcc ]; then
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DDDPS_CUDA=ON \
        -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc >/dev/null
  cmake --build build-cuda -j "$jobs" --target ddps test_cuda
  run_ctest build-cuda -R '^test_cuda$'
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
run_ctest build -j "$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDDPS_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
run_ctest build-asan -j "$jobs"
if [ "$passed" -eq 0 ]; then
  echo "test.sh: no test ran" >&2
  exit 1
fi
echo "ddps: $passed passed, $failed failed, $skipped skipped" | tee build/test-summary.txt
