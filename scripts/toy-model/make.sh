#!/bin/sh
# Makes the toy model data/toy-sd from a seed, on the CPU, in about 85 minutes on
# two cores (see data/toy-sd/README.md for what it is and how it was made):
#   1. the toy world's training split (ddps demo --world-only, seed 1000);
#   2. the VAE trained as an autoencoder on it (train_vae.py, TOY_VAE_MINUTES, 20);
#   3. the fixed random text encoder: tiny-sd's with its attention projections
#      scaled by TOY_ATTN_SCALE (text_encoder.py), and the class prompts' and
#      the null prompt's outputs from it (ddps probe text);
#   4. the UNet trained by train.py (Debian's python3-torch with diffusers 0.27.2
#      from ../shared/anchors), with OpenBLAS for torch's matrix products;
#   5. the model folder assembled: tiny-sd's tokenizer, the scaled text encoder,
#      the trained VAE with its scaling factor, the trained UNet in f16.
# Usage: scripts/toy-model/make.sh [OUT (data/toy-sd)] [extra train.py flags]
# The committed model: scripts/toy-model/make.sh data/toy-sd --steps 7000 --minutes 60 (the time
# budgets ended the VAE at step 2615 and the UNet at step 5794 on a 2-core Xeon VM; on another
# machine the same seeds give the same steps, but a budget may end them elsewhere: pass
# --minutes 1000 and TOY_VAE_MINUTES=1000 to run all steps).
# Environment: TOY_SEED (1000) world seed, TOY_PER_CLASS (800) training images
# per class, TOY_WORK (/tmp/ddps-toy) scratch folder, TOY_ATTN_SCALE the text
# encoder's attention scale (1, the committed model: tiny-sd's encoder as it is; EVALUATION.md
# has what 8 gave).
set -e
cd "$(dirname "$0")/../.."
out=${1:-data/toy-sd}
[ $# -gt 0 ] && shift
seed=${TOY_SEED:-1000} per=${TOY_PER_CLASS:-800} work=${TOY_WORK:-/tmp/ddps-toy}
base=../shared/golden/tiny-sd
scripts/setup-debian.sh
need=""
for p in python3-torch libopenblas0-openmp python3-packaging python3-requests python3-filelock python3-yaml \
         python3-regex python3-importlib-metadata python3-tqdm; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $need
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target ddps
mkdir -p "$work"
[ -d "$work/diffusers/src" ] || { mkdir -p "$work/diffusers"; tar xzf ../shared/anchors/diffusers-0.27.2-hub-0.22.2-src.tar.gz -C "$work/diffusers"; }
build/ddps demo --world-only --seed "$seed" --train "$per" --val 0 --test 0 --out "$work/world"
export PYTHONPATH="$work/diffusers/src:$work/diffusers/stubs"
(OMP_NUM_THREADS=2 /usr/bin/python3 scripts/toy-model/train_vae.py --world "$work/world/train" --base "$base" \
  --out "$work/vae" --minutes "${TOY_VAE_MINUTES:-20}" --threads 2; echo $? > "$work/vae.rc") 2>&1 | tee "$work/vae.log"
[ "$(cat "$work/vae.rc")" = 0 ] || { echo "make.sh: VAE training failed (log: $work/vae.log)" >&2; exit 1; }
# the model's text side: tiny-sd's tokenizer and its text encoder, attention scaled
rm -rf "$work/text"
mkdir -p "$work/text"
cp -r "$base/tokenizer" "$base/model_index.json" "$work/text/"
/usr/bin/python3 scripts/toy-model/text_encoder.py "$base/text_encoder" "$work/text/text_encoder" "${TOY_ATTN_SCALE:-1}"
# prompts in sorted folder order (as ddps and train.py order classes), then the null prompt
sort "$work/world/classes.tsv" | cut -f2 | sed 's/.*/An image of &./' > "$work/prompts.txt"
echo "" >> "$work/prompts.txt"
ids=""
while IFS= read -r line; do
  ids="$ids$(build/ddps probe tokenize --model "$work/text" "$line" | tr ' ' ',');"
done < "$work/prompts.txt"
/usr/bin/python3 - "$work/ids.safetensors" "$ids" <<'PY'
import json, struct, sys
rows = [[int(v) for v in r.split(",")] for r in sys.argv[2].split(";") if r]
data = b"".join(struct.pack("<%dq" % len(r), *r) for r in rows)
head = json.dumps({"input_ids": {"dtype": "I64", "shape": [len(rows), len(rows[0])], "data_offsets": [0, len(data)]}}).encode()
head += b" " * ((8 - len(head) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(head)) + head + data)
PY
build/ddps probe text --model "$work/text" --in "$work/ids.safetensors" --out "$work/text.safetensors"
mkdir -p "$out"
(OMP_NUM_THREADS=2 /usr/bin/python3 scripts/toy-model/train.py --world "$work/world/train" --text "$work/text.safetensors" \
  --vae "$work/vae" --out "$out" --threads 2 "$@"; echo $? > "$work/train.rc") 2>&1 | tee "$work/train.log"
[ "$(cat "$work/train.rc")" = 0 ] || { echo "make.sh: training failed (log: $work/train.log)" >&2; exit 1; }
for d in scheduler tokenizer; do mkdir -p "$out/$d"; cp "$base/$d"/* "$out/$d/"; done
mkdir -p "$out/text_encoder"
cp "$work/text/text_encoder"/* "$out/text_encoder/"
cp "$base/model_index.json" "$out/"
cp "$work/vae/diffusion_pytorch_model.safetensors" "$out/vae/"
cp "$work/vae/loss.tsv" "$out/vae-loss.tsv"
cp "$work/vae.log" "$out/vae-train.log"
chmod -R u+w "$out"
cp "$work/train.log" "$out/train.log"
echo "toy model written to $out"
