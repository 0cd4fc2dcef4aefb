#!/bin/sh
# The paper's claim in miniature on the toy world (issue 19; EVALUATION.md, "The paper's claim"):
# students trained with a teacher's soft labels on ddps's distilled set, against the same number
# of random real pictures, ddps without clusters and random windows, at IPC 1, 10 and 50.
#
#   scripts/toy-model/claim.sh prepare W          world (seed 5), scoring, teacher, the 12 sets
#   scripts/toy-model/claim.sh eval W [IPC...]    5 students per set (resumable: run it again)
#   scripts/toy-model/claim.sh table W [OUT.json]  the table, from the sets' eval.json (and the
#                                                 students' results, settings and commit in OUT.json)
#
# Sizes (2-core CPU budget): the world's 100 training and 50 validation pictures per class, sets
# written at 64 px, ConvNet-3 teacher and students at 32 px; RDED's protocol with its defaults
# (300 epochs) except IPC 50 at CLAIM_EPOCHS_50 epochs (60). DDPS names the ddps binary, MODEL the
# diffusion model (data/toy-sd). CLAIM_ROWS limits prepare and eval to some rows (after a new toy
# model, only "ddps no-clusters" change: the random rows do not read the scores); prepare keeps a
# world and a teacher that W already has.
set -eu
DDPS=${DDPS:-build/ddps}
MODEL=${MODEL:-data/toy-sd}
ROWS=${CLAIM_ROWS:-ddps no-clusters random-windows random-images}
what=$1 W=$2
shift 2
case $what in
prepare)
    mkdir -p "$W"
    [ -f "$W/world/boxes.json" ] || "$DDPS" demo --world-only --seed 5 --train 100 --val 50 --test 0 --out "$W/world"
    "$DDPS" score --data "$W/world/train" --model "$MODEL" --class-names "$W/world/classes.tsv" \
        --size 128 --patch 80 --stride 8 --patches-per-image 2 --store "$W/store.sqlite"
    [ -f "$W/teacher.safetensors" ] || "$DDPS" train --data "$W/world/train" --val "$W/world/val" --model convnet3 \
        --size 32 --epochs 30 --out "$W/teacher.safetensors"
    for row in $ROWS; do
        case $row in
        ddps) extra= ;;
        no-clusters) extra="--top-clusters 0" ;;
        *) extra="--baseline $row" ;;
        esac
        # shellcheck disable=SC2086
        "$DDPS" select --store "$W/store.sqlite" --out "$W/sets/$row" --ipc 1,10,50 --output-size 64 $extra
    done
    ;;
eval)
    ipcs=${*:-1 10 50}
    for ipc in $ipcs; do
        epochs=300
        [ "$ipc" -gt 10 ] && epochs=${CLAIM_EPOCHS_50:-60}
        for row in $ROWS; do
            "$DDPS" eval --distilled "$W/sets/$row/ipc$ipc" --val "$W/world/val" --teacher "$W/teacher.safetensors" \
                --teacher-model convnet3 --student convnet3 --size 32 --epochs "$epochs" --students 5 --seed 0 \
                --threads "${THREADS:-1}"
        done
    done
    ;;
table)
    /usr/bin/python3 - "$W" "${1:-}" "$(git rev-parse --short HEAD 2>/dev/null)" <<'PY'
import json, statistics, sys
W, out, commit = sys.argv[1], sys.argv[2], sys.argv[3]
rows = ["ddps", "no-clusters", "random-windows", "random-images"]
summary = {"commit": commit, "rows": {}}
print("| IPC | epochs | " + " | ".join(rows) + " |")
print("| --- | --- |" + " --- |" * len(rows))
for ipc in (1, 10, 50):
    cells, epochs = [], ""
    for r in rows:
        try:
            j = json.load(open(f"{W}/sets/{r}/ipc{ipc}/eval.json"))
        except OSError:
            cells.append("-"); continue
        top = [100 * s["best_top1"] for s in j["students"]]
        epochs = j["settings"]["epochs"]
        st = {k: v for k, v in j["settings"].items() if k not in ("teacher", "val")}
        summary["rows"].setdefault(r, {})[str(ipc)] = {
            "settings": st, "ddps_version": j["ddps_version"],
            "students": [{k: s[k] for k in ("seed", "best_top1", "top1", "best_top5", "top5", "seconds")}
                         for s in j["students"]]}
        sd = statistics.stdev(top) if len(top) > 1 else 0.0
        cells.append("%.1f +- %.1f (n=%d)" % (statistics.mean(top), sd, len(top)))
    print(f"| {ipc} | {epochs} | " + " | ".join(cells) + " |")
if out:
    json.dump(summary, open(out, "w"), indent=1)
PY
    ;;
*) echo "usage: claim.sh prepare|eval|table W [IPC...]" >&2; exit 2 ;;
esac
