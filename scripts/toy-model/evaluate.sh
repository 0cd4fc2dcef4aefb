#!/bin/sh
# Measures the method on a toy world the toy model never saw (EVALUATION.md):
# writes a fresh world's test split, scores it with the label prompt and with
# the label-free prompt, and prints `ddps world-eval`'s table for each.
# Usage: scripts/toy-model/evaluate.sh [SEED (4242)] [PER_CLASS (50)] [MODEL (data/toy-sd)]
# Scratch files go to ${TOY_EVAL:-/tmp/ddps-toy-eval}; TOY_THREADS sets ddps threads (default all).
# Needs a built ddps (build/ddps).
set -e
cd "$(dirname "$0")/../.."
seed=${1:-4242} per=${2:-50} model=${3:-data/toy-sd}
work=${TOY_EVAL:-/tmp/ddps-toy-eval}
ddps=build/ddps
rm -rf "$work"
mkdir -p "$work"
$ddps demo --world-only --seed "$seed" --train 0 --val 0 --test "$per" --out "$work/world"
common="--data $work/world/test --model $model --size 128 --patch 80 --stride 8 --patches-per-image 2
        --class-names $work/world/classes.tsv --threads ${TOY_THREADS:-0}"
$ddps -q score $common --store "$work/label.sqlite"
$ddps -q score $common --prompt "An image of an object." --store "$work/free.sqlite"
echo "== label prompt \"An image of {}.\" (seed $seed, $per pictures per class)"
$ddps world-eval --store "$work/label.sqlite" --world "$work/world" --json
echo
echo "== label-free prompt \"An image of an object.\""
$ddps world-eval --store "$work/free.sqlite" --world "$work/world" --json
