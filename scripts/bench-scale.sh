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
# Needs ddps built with Open MPI (mpirun on PATH).
# Extra ddps options: EXTRA="...". CPU-s per image (user + system, all processes) shows the
# cost of the split independently of other load on the machine.
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

TIMEFORMAT='%R %U %S' # bash's time: wall, user and system seconds of the command and its children
{ time "$BUILD/ddps" -q score "${OPTS[@]}" --threads "$CORES" --store "$TMP/one.sqlite" $EXTRA 2>"$TMP/one.log"; } \
  2>"$TMP/one.time" || { cat "$TMP/one.log"; exit 1; }
{ time mpirun --oversubscribe --allow-run-as-root --bind-to none -n "$N" \
  "$BUILD/ddps" -q score "${OPTS[@]}" --store "$TMP/many.sqlite" $EXTRA 2>"$TMP/many.log"; } \
  2>"$TMP/many.time" || { cat "$TMP/many.log"; exit 1; }
read -r w1 u1 s1 <"$TMP/one.time"
read -r w2 u2 s2 <"$TMP/many.time"
load=$(cut -d' ' -f1 /proc/loadavg)
awk -v w1="$w1" -v c1="$(awk -v a="$u1" -v b="$s1" 'BEGIN{print a+b}')" -v w2="$w2" \
    -v c2="$(awk -v a="$u2" -v b="$s2" 'BEGIN{print a+b}')" -v n="$N" -v img="$IMAGES" -v cores="$CORES" \
    -v load="$load" 'BEGIN {
  t = int(cores / n); if (t < 1) t = 1;
  printf "ddps bench scale: %d images, %d cores, load average %s\n", img, cores, load;
  printf "  1 process x %d threads:  %6.1f s, %.3f img/s, %.3f CPU-s per image\n", cores, w1, img / w1, c1 / img;
  printf "  %d processes x %d threads: %6.1f s, %.3f img/s, %.3f CPU-s per image\n", n, t, w2, img / w2, c2 / img;
  printf "  throughput ratio (%d processes / 1): %.2f\n", n, w1 / w2;
}'
