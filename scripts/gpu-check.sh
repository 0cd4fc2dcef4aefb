#!/bin/bash
# One command for a machine with an NVIDIA GPU (sm_90 by default): builds ddps
# with the CUDA backend, runs the CUDA tests (every op against the CPU
# backend, the golden probes through `ddps probe --device cuda`, a full-size
# UNet), the golden probes once more by hand, then the benchmarks, printing
# everything. About 5 minutes on an H100, most of it building and making
# random full-size weights.
#
#   scripts/gpu-check.sh
#   BUILD=/tmp/b ARCH=90 SHARED=/data/shared scripts/gpu-check.sh
#
# SHARED is the folder with golden/ (default: ./shared or ../shared).
# Exit status: non-zero if the build, the tests or a probe failed
# (benchmarks are reported, not judged).
set -u -o pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-cuda}
ARCH=${ARCH:-90}
JOBS=$(nproc 2>/dev/null || echo 4)
NVCC=${NVCC:-}
if [ -z "$NVCC" ]; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc; else NVCC=$(command -v nvcc || true); fi
fi
SHARED=${SHARED:-}
if [ -z "$SHARED" ]; then
  for d in shared ../shared; do [ -d "$d/golden" ] && { SHARED=$(cd "$d" && pwd); break; }; done
fi
status=0
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || echo "nvidia-smi not available"

step "configure + build ($BUILD, sm_$ARCH, nvcc ${NVCC:-not found}, golden in ${SHARED:-NOT FOUND})"
[ -n "$NVCC" ] || { echo "no nvcc: cannot build the CUDA backend"; exit 1; }
shared_opt=()
[ -n "$SHARED" ] && shared_opt=(-DDDPS_SHARED_DIR="$SHARED")
t0=$(date +%s)
mkdir -p "$BUILD"
LOG=$BUILD/gpu-check-build.log
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDDPS_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" "${shared_opt[@]}" >"$LOG" 2>&1 ||
   ! cmake --build "$BUILD" -j "$JOBS" --target ddps test_cuda >>"$LOG" 2>&1; then
  tail -n 60 "$LOG"
  echo "build FAILED"
  exit 1
fi
grep -i "warning" "$LOG" | head -20
echo "built in $(( $(date +%s) - t0 )) s"

step "test_cuda: ops against the CPU, golden probes, full-size UNet"
if ! timeout 480 "$BUILD/tests/test_cuda"; then status=1; echo "test_cuda FAILED"; fi

step "golden probes by hand (relative L2 error against golden/)"
if [ -n "$SHARED" ]; then
  G=$SHARED/golden
  tmp=$(mktemp -d)
  for prec in f32 bf16; do
    for what in text vae unet; do
      timeout 120 "$BUILD/ddps" probe "$what" --model "$G/tiny-sd" --in "$G/$what.safetensors" \
        --out "$tmp/$what-$prec.safetensors" --device cuda --precision "$prec" ||
        { status=1; echo "probe $what $prec FAILED"; }
    done
  done
  python3 - "$tmp" "$G" <<'EOF' || true
import array, json, math, struct, sys
tmp, g = sys.argv[1], sys.argv[2]
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: array.array('f', b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]])
            for k, v in h.items() if k != '__metadata__' and v['dtype'] == 'F32'}
for prec in ('f32', 'bf16'):
    for what in ('text', 'vae', 'unet'):
        try:
            out, ref = load('%s/%s-%s.safetensors' % (tmp, what, prec)), load('%s/%s.safetensors' % (g, what))
        except OSError as e:
            print('  %s %s: %s' % (what, prec, e)); continue
        for k in sorted(out):
            if k in ref:
                num = sum((a - b) ** 2 for a, b in zip(out[k], ref[k])); den = sum(b * b for b in ref[k]) or 1
                print('  %-5s %-5s %-18s rel err %.3g' % (what, prec, k, math.sqrt(num / den)))
EOF
  rm -rf "$tmp"
else
  echo "golden/ not found (set SHARED): skipped"; status=1
fi

for prec in bf16 f16; do
  step "bench unet $prec"
  timeout 300 "$BUILD/ddps" bench unet --device cuda --precision $prec --batch 1,8,32,128 --json ||
    echo "bench unet $prec FAILED"
done
for prec in bf16 f16 f32; do
  step "bench vae $prec, batch 32"
  timeout 200 "$BUILD/ddps" bench vae --device cuda --precision $prec --batch 32 --json || echo "bench vae $prec FAILED"
done
step "bench unet bf16 batch 32, time per op kind"
timeout 200 "$BUILD/ddps" bench unet --device cuda --precision bf16 --batch 32 --iters 1 --profile || true

step "done: $([ $status = 0 ] && echo 'tests passed' || echo 'TESTS FAILED')"
exit $status
