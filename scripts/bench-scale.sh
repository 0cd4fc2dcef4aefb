#!/bin/bash
# Scale-out benchmark: the same small scoring job with 1 process and with N
# MPI processes (each taking cores/N threads), printing both throughputs and
# their ratio. The 1-process run uses all cores itself, so the ratio shows
# what splitting the work over processes gains (or costs) on this machine,
# merge and model loading included.
#
#   scripts/bench-scale.sh [N]                   (default N = 2)
#   BUILD=build MODEL=../shared/golden/tiny-sd DATA=../shared/data/imagewoof-mini/train \
#     CLASSES=n02086240,n02087394 PER_CLASS=12 SIZE=128 scripts/bench-scale.sh 2
#
# Needs ddps built with Open MPI (mpirun on PATH). Extra ddps options: EXTRA="...".
set -eu -o pipefail
cd "$(dirname "$0")/.."
N=${1:-2}
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
MODEL=${MODEL:-$SHARED/golden/tiny-sd}
DATA=${DATA:-$SHARED/data/imagewoof-mini/train}
CLASSES=${CLASSES:-n02086240,n02087394}
PER_CLASS=${PER_CLASS:-12}
SIZE=${SIZE:-128}
PATCH=${PATCH:-$((SIZE * 3 / 4))}
EXTRA=${EXTRA:-}
CORES=$(nproc)
TMP=$(mktemp -d /tmp/ddps-bench-scale-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
OPTS=(--data "$DATA" --model "$MODEL" --classes "$CLASSES" --max-per-class "$PER_CLASS" --size "$SIZE" --patch "$PATCH")
IMAGES=$(( $(tr -cd , <<<"$CLASSES" | wc -c) + 1 ))
IMAGES=$((IMAGES * PER_CLASS))
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

now() { date +%s.%N; }
t0=$(now)
"$BUILD/ddps" -q score "${OPTS[@]}" --threads "$CORES" --store "$TMP/one.sqlite" $EXTRA
t1=$(now)
mpirun --oversubscribe --allow-run-as-root --bind-to none -n "$N" \
  "$BUILD/ddps" -q score "${OPTS[@]}" --store "$TMP/many.sqlite" $EXTRA
t2=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$N" -v img="$IMAGES" -v cores="$CORES" 'BEGIN {
  one = b - a; many = c - b;
  printf "ddps bench scale: %d images, %d cores\n", img, cores;
  printf "  1 process x %d threads: %.1f s, %.3f img/s\n", cores, one, img / one;
  printf "  %d processes x %d threads: %.1f s, %.3f img/s\n", n, (cores / n < 1 ? 1 : int(cores / n)), many, img / many;
  printf "  throughput ratio (%d processes / 1): %.2f\n", n, one / many;
}'
