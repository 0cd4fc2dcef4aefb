#!/bin/sh
# `ddps bench train` against its PyTorch anchor (scripts/bench-train-torch.py),
# back to back in the same run with the same threads, and the ratios.
#
#   scripts/bench-train.sh [--rounds R] [--torch-opts "--channels-last"] [bench train options]
#
# e.g. scripts/bench-train.sh --model resnet18 --size 224 --batch 64 --steps 3 --threads 2
#      scripts/bench-train.sh --model convnet3 --size 32 --batch 256 --steps 10 --threads 1
#
# Each round runs ddps, then PyTorch (alternating, so that a neighbour's load
# falls on both); every figure is the median over the rounds (R = 3 by
# default). Prints both reports, then ddps/torch ratios of train images/s,
# teacher images/s and peak RSS, and one JSON object as the last line.
# DDPS (default build/ddps) and PYTHON (default /usr/bin/python3: Debian's torch)
# may be set. Exit status: 0 measured, 1 a run failed, 2 a bad invocation.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
DDPS=${DDPS:-$here/../build/ddps}
PYTHON=${PYTHON:-/usr/bin/python3}
rounds=3
topts=""
args=""
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) [ $# -ge 2 ] || { echo "bench-train.sh: --rounds needs a value" >&2; exit 2; }
        rounds=$2; shift 2 ;;
    --torch-opts) [ $# -ge 2 ] || { echo "bench-train.sh: --torch-opts needs a value" >&2; exit 2; }
        topts=$2; shift 2 ;;
    --json) shift ;; # always on underneath
    --precision) [ $# -ge 2 ] || { echo "bench-train.sh: --precision needs a value" >&2; exit 2; }
        args="$args --precision $2"; shift 2 ;;
    --model|--size|--batch|--steps|--threads)
        [ $# -ge 2 ] || { echo "bench-train.sh: $1 needs a value" >&2; exit 2; }
        args="$args $1 $2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-train.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$rounds" in ''|*[!0-9]*|0) echo "bench-train.sh: --rounds $rounds: expected a positive integer" >&2; exit 2 ;; esac
[ -x "$DDPS" ] || { echo "bench-train.sh: $DDPS: not built (cmake --build build)" >&2; exit 1; }
# the torch script takes the same options but --precision (f32 only)
targs=$(echo "$args" | sed 's/--precision [a-z0-9]*//')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=1
while [ "$i" -le "$rounds" ]; do
    # shellcheck disable=SC2086
    "$DDPS" bench train $args --json > "$tmp/ddps.$i" || { cat "$tmp/ddps.$i" >&2; echo "bench-train.sh: ddps bench train failed" >&2; exit 1; }
    # shellcheck disable=SC2086
    "$PYTHON" "$here/bench-train-torch.py" $targs $topts --json > "$tmp/torch.$i" || { cat "$tmp/torch.$i" >&2; echo "bench-train.sh: bench-train-torch.py failed" >&2; exit 1; }
    cat "$tmp/ddps.$i" "$tmp/torch.$i"
    i=$((i + 1))
done
"$PYTHON" - "$tmp" "$rounds" <<'EOF'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
def runs(impl):
    out = []
    for i in range(1, rounds + 1):
        with open(f"{tmp}/{impl}.{i}") as f:
            out.append(json.loads(f.read().strip().splitlines()[-1]))
    return out
d, t = runs("ddps"), runs("torch")
med = lambda rs, k: statistics.median(r[k] for r in rs)
keys = ("train_images_per_s", "teacher_images_per_s", "train_images_per_cpu_s", "teacher_images_per_cpu_s",
        "peak_rss_mb")
res = {"bench": "train-vs-torch", "model": d[0]["model"], "size": d[0]["size"], "batch": d[0]["batch"],
       "threads": d[0]["threads"], "torch_threads": t[0]["threads"], "precision": d[0]["precision"],
       "steps": d[0]["steps"], "rounds": rounds}
print()
print(f"medians over {rounds} rounds ({d[0]['model']}, {d[0]['size']} px, batch {d[0]['batch']}, "
      f"ddps {d[0]['precision']} {d[0]['threads']} threads, torch f32 {t[0]['threads']} threads):")
for k in keys:
    a, b = med(d, k), med(t, k)
    res["ddps_" + k], res["torch_" + k], res["ratio_" + k] = a, b, a / b
    print(f"  {k:22s} ddps {a:9.1f}  torch {b:9.1f}  ratio {a / b:5.2f}")
print(json.dumps(res, separators=(",", ":")))
EOF
