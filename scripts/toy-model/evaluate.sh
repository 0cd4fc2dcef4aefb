#!/bin/sh
# Measures the method on a toy world the toy model never saw (EVALUATION.md):
# writes a fresh world's test split, scores it with the label prompt and with
# the label-free prompt, and with shuffled class names (a control: each class
# named as the next), and prints `ddps world-eval`'s table for each.
# Usage: scripts/toy-model/evaluate.sh [SEED (4242)] [PER_CLASS (50)] [MODEL (data/toy-sd)]
# Scratch files go to ${TOY_EVAL:-/tmp/ddps-toy-eval}; TOY_THREADS sets ddps threads (default all);
# TOY_T_RANGE a timestep range other than METHOD.md's 0.1,0.7 (EVALUATION.md compares ranges).
# Needs a built ddps (build/ddps, or DDPS).
set -e
cd "$(dirname "$0")/../.."
seed=${1:-4242} per=${2:-50} model=${3:-data/toy-sd}
work=${TOY_EVAL:-/tmp/ddps-toy-eval}
ddps=${DDPS:-build/ddps}
rm -rf "$work"
mkdir -p "$work"
$ddps demo --world-only --seed "$seed" --train 0 --val 0 --test "$per" --out "$work/world"
common="--data $work/world/test --model $model --size 128 --patch 80 --stride 8 --patches-per-image 2
        --t-range ${TOY_T_RANGE:-0.1,0.7} --threads ${TOY_THREADS:-0}"
names="$work/world/classes.tsv"
cut -f1 "$names" > "$work/folders"
cut -f2 "$names" > "$work/names"
(tail -n +2 "$work/names"; head -n 1 "$work/names") | paste "$work/folders" - > "$work/shuffled.tsv"
$ddps -q score $common --class-names "$names" --store "$work/label.sqlite"
$ddps -q score $common --class-names "$names" --prompt "An image of an object." --store "$work/free.sqlite"
$ddps -q score $common --class-names "$work/shuffled.tsv" --store "$work/shuffled.sqlite"
echo "== label prompt \"An image of {}.\" (seed $seed, $per pictures per class)"
$ddps world-eval --store "$work/label.sqlite" --world "$work/world" --json
echo
echo "== label-free prompt \"An image of an object.\""
$ddps world-eval --store "$work/free.sqlite" --world "$work/world" --json
echo
echo "== control: shuffled class names (each class prompted with the next class's name)"
$ddps world-eval --store "$work/shuffled.sqlite" --world "$work/world" --json
