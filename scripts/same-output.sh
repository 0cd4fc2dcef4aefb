#!/bin/sh
# Before/after check for refactors: runs the same commands with two ddps
# binaries and compares what they write, byte for byte, apart from what is
# meant to differ between runs (timings, dates, process ids).
#
#   scripts/same-output.sh BEFORE_DDPS AFTER_DDPS WORKDIR
#
# Commands (the toy world, small; one thread so both runs draw the same
# numbers): `ddps demo`, then `ddps score` into a second store with other
# settings, the same as two `--shard` runs joined by `ddps merge`, `ddps select` (png and jpg, mosaics and single patches, index
# folder names off), `ddps report`. Stores are compared as `sqlite3 .dump`
# with the run log's times masked; manifests and report pages with their
# timing fields and dates masked; every image file byte for byte.
# Exits 0 when everything matches, 1 with the differences otherwise.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 BEFORE_DDPS AFTER_DDPS WORKDIR" >&2; exit 2; }
before=$1 after=$2 work=$3
rm -rf "$work"
mkdir -p "$work"

run_all() {
  bin=$1 d=$2
  mkdir -p "$d"
  "$bin" -q demo --out "$d/demo" --classes 3 --per-class 6 --threads 1 >"$d/demo.out"
  w=$d/demo/world/test
  "$bin" -q score --data "$w" --model "$d/demo/model" --store "$d/s.sqlite" --class-names "$d/demo/world/classes.tsv" \
    --size 128 --patch 64 --stride 16 --patches-per-image 3 --clusters 3 --threads 1 --seed 7
  for k in 0 1; do
    "$bin" -q score --data "$w" --model "$d/demo/model" --store "$d/m.sqlite" --class-names "$d/demo/world/classes.tsv" \
      --size 128 --patch 64 --stride 16 --patches-per-image 3 --clusters 3 --threads 1 --seed 7 --shard $k/2
  done
  "$bin" -q merge --store "$d/m.sqlite" "$d/m.sqlite.shard-0-of-2" "$d/m.sqlite.shard-1-of-2"
  rm -f "$d"/m.sqlite.shard-*
  "$bin" -q select --store "$d/s.sqlite" --out "$d/sel-png" --ipc 1,2,12 --top-clusters 2 --threads 1
  "$bin" -q select --store "$d/s.sqlite" --out "$d/sel-jpg" --ipc 3 --format jpg --jpeg-quality 80 \
    --output-size 97 --mosaic-max-ipc 0 --threads 1
  "$bin" -q report --store "$d/s.sqlite" --out "$d/report" --ipc 2 --thumb 64 --threads 1
}

# Both runs in the same folder (paths are recorded), then moved aside.
run_all "$before" "$work/run"
mv "$work/run" "$work/before"
run_all "$after" "$work/run"
mv "$work/run" "$work/after"

# Text forms with run-dependent values masked.
mask() {
  sed -E -e 's/("(load|select|write|selection|writing|scoring|decode|cluster|total|elapsed)_?(s|seconds|ms)?"[: ]*)[0-9.e+-]+/\1T/g' \
         -e 's/"[a-z_]*seconds?"[: ]*[0-9.e+-]+/"seconds":T/g' \
         -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z?/DATE/g' \
         -e 's/[0-9]+\.[0-9]+ s\b/T s/g' -e 's/in [0-9.]+ ?s/in T s/g' \
         -e 's/(pid|host)[": =]+[A-Za-z0-9._-]+/\1=X/g' \
         -e 's#(DATE</td><td class="n">)[0-9.]+#\1T#g' -e 's#(<th>total</th><th></th><th class="n">)[0-9.]+#\1T#g'
}
# A store as SQL text, the time columns (per image, per run) cleared in a copy.
dump_store() {
  cp "$1" "$work/dump.sqlite"
  sqlite3 "$work/dump.sqlite" "UPDATE images SET seconds = 0; UPDATE runs SET seconds = 0, finished = '';"
  sqlite3 "$work/dump.sqlite" .dump | mask
  rm -f "$work/dump.sqlite"
}

status=0
for side in before after; do
  d=$work/$side
  (cd "$d" && find . -type f ! -name '*.sqlite-*' | LC_ALL=C sort) >"$work/$side.files"
done
if ! cmp -s "$work/before.files" "$work/after.files"; then
  echo "same-output: the two runs wrote different files:"
  diff "$work/before.files" "$work/after.files" || true
  status=1
fi
n=0
while read -r f; do
  [ -f "$work/after/$f" ] || continue
  n=$((n + 1))
  case $f in
    *.sqlite)
      dump_store "$work/before/$f" >"$work/a.txt"
      dump_store "$work/after/$f" >"$work/b.txt" ;;
    *.json|*.html|*.csv|*.out|*.txt|*.tsv|*.js|*.css)
      mask <"$work/before/$f" >"$work/a.txt"
      mask <"$work/after/$f" >"$work/b.txt" ;;
    *)
      cp "$work/before/$f" "$work/a.txt"
      cp "$work/after/$f" "$work/b.txt" ;;
  esac
  if ! cmp -s "$work/a.txt" "$work/b.txt"; then
    echo "same-output: $f differs"
    diff "$work/a.txt" "$work/b.txt" | head -20 || true
    status=1
  fi
done <"$work/before.files"
echo "same-output: $n files compared, $( [ $status -eq 0 ] && echo identical || echo DIFFERENT )"
exit $status
