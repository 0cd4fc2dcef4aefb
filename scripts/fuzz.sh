#!/bin/sh
# Builds the libFuzzer harnesses (fuzz/, clang, separate from the gcc product
# build) and runs each for SECONDS (default 60), starting from the generated
# seeds and the committed minimised corpus fuzz/corpus/<harness>.
# FUZZ_MINIMISE=1 writes the grown corpus back there, minimised (-merge=1).
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]
#
# Corpora grow in build-fuzz/corpus/<harness>; crashes, leaks, timeouts and
# out-of-memory inputs land in build-fuzz/artifacts/<harness>/ and make the
# script exit 1. Limits per input: -timeout=10 (stalls), -rss_limit_mb=2048,
# -malloc_limit_mb=1024 (runaway allocations). One harness at a time
# (FUZZ_PARALLEL=n runs n harnesses at once; FUZZ_JOBS=n runs n workers of each). A summary line per harness
# (executions, coverage, corpus) goes to build-fuzz/summary.txt.
set -e
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# clang, libFuzzer's runtime and clang's OpenMP, installed like setup-debian.sh installs the rest
need=""
for p in clang libclang-rt-14-dev libomp-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need
fi
scripts/setup-debian.sh >/dev/null
jobs=${FUZZ_JOBS:-1}
cmake -S fuzz -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j "$(nproc 2>/dev/null || echo 2)"
rm -rf build-fuzz/seeds
build-fuzz/make_seeds build-fuzz/seeds
harnesses=${*:-"fuzz_safetensors fuzz_config fuzz_tokenizer fuzz_image fuzz_jpeg fuzz_png fuzz_bmp_pnm fuzz_class_names fuzz_store fuzz_options"}
dict_for() {
  case $1 in
    fuzz_config|fuzz_tokenizer|fuzz_safetensors) echo "-dict=fuzz/dict/json.dict" ;;
    fuzz_options) echo "-dict=fuzz/dict/options.dict" ;;
    fuzz_class_names) echo "-dict=fuzz/dict/mapping.dict" ;;
  esac
}
# parallel workers only when asked (libFuzzer's job mode writes fuzz-N.log into the current folder)
par=
[ "$jobs" -gt 1 ] && par="-jobs=$jobs -workers=$jobs"
# One harness: runs it, prints its summary line (also kept in build-fuzz/<h>.summary).
run_one() {
  h=$1
  corpus=build-fuzz/corpus/$h art=build-fuzz/artifacts/$h
  mkdir -p "$corpus" "$art"
  [ -d build-fuzz/seeds/$h ] && cp -n build-fuzz/seeds/$h/* "$corpus"/ 2>/dev/null || true
  [ -d fuzz/corpus/$h ] && cp -n fuzz/corpus/$h/* "$corpus"/ 2>/dev/null || true
  log=build-fuzz/$h.log
  rc=0
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
       build-fuzz/$h "$corpus" $(dict_for "$h") -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
       -malloc_limit_mb=1024 -max_len=65536 -artifact_prefix="$art/" -print_final_stats=1 \
       $par >"$log" 2>&1; then
    rc=1
    echo "   $h FAILED: see $log and $art/"
  fi
  # FUZZ_MINIMISE=1: the grown corpus, minimised (-merge=1: the smallest set
  # with the same coverage), replaces the committed one in fuzz/corpus/<harness>;
  # hand-made seeds (names that are not libFuzzer's 40-hex-digit hashes) are
  # kept, and a corpus over 512 KB is not committed (fuzz_store's inputs are
  # whole SQLite files: the generated seed store is its start)
  if [ "${FUZZ_MINIMISE:-}" = 1 ] && [ $rc -eq 0 ]; then
    new=build-fuzz/minimised/$h
    rm -rf "$new" && mkdir -p "$new"
    if build-fuzz/$h -merge=1 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 "$new" "$corpus" \
         >"build-fuzz/$h.merge.log" 2>&1; then
      for f in fuzz/corpus/$h/*; do
        [ -f "$f" ] && ! expr "${f##*/}" : '[0-9a-f]\{40\}$' >/dev/null && cp "$f" "$new"/
      done
      if [ "$(du -sb "$new" | cut -f1)" -le 524288 ]; then
        rm -rf "fuzz/corpus/$h" && cp -r "$new" "fuzz/corpus/$h"
      else
        echo "   $h: minimised corpus over 512 KB, not written to fuzz/corpus"
      fi
    else
      echo "   $h: minimising the corpus failed: see build-fuzz/$h.merge.log"
    fi
  fi
  # the last status line: "#N DONE cov: C ft: F corp: K/..." plus final stats
  line=$(grep -E "^#[0-9]+" "$log" | tail -1)
  execs=$(grep -E "stat::number_of_executed_units" "$log" | tail -1 | awk '{print $2}')
  echo "$h seconds=$secs execs=${execs:-?} $line" | tee build-fuzz/$h.summary
  return $rc
}
# FUZZ_PARALLEL=n runs n harnesses at once (CI: one per core).
at_once=${FUZZ_PARALLEL:-1}
failed=0
set -- $harnesses
while [ $# -gt 0 ]; do
  pids="" k=0
  while [ $k -lt "$at_once" ] && [ $# -gt 0 ]; do
    echo "== $1: ${secs} s"
    run_one "$1" &
    pids="$pids $!"
    shift
    k=$((k + 1))
  done
  for p in $pids; do wait "$p" || failed=1; done
done
for h in $harnesses; do cat build-fuzz/$h.summary; done > build-fuzz/summary.txt
exit $failed
