#!/usr/bin/env bash
# Issue 7's benchmark on a CUDA machine: Oct-I3D-R50 at alpha 0.5, 0.2 and 0.1 against its alpha-0
# twin (and PyTorchVideo's I3D-R50 at alpha 0.5), in float32 and bfloat16, eager and compiled,
# batch 8 inference and batch 8 training steps at 8x224x224. Each line is one
# tools/bench_models.py run (both models interleaved); every table is appended to
# $OUT/BENCHMARKS-gpu.md (or ./BENCHMARKS-gpu.md without $OUT) with its command, date and GPU.
#
# The GPU machines lent here have torch but no network and none of fvcore, iopath, yacs,
# termcolor, pytorchvideo, parameterized. Copy them (pure Python) out of this checkout's .venv
# first, then carry the folder:
#
#     bash tools/bench_gpu.sh --prepare         # here: fills .gpu_site/ (ignored by git)
#     run(command="bash tools/bench_gpu.sh", carry=[".gpu_site"], timeout_s=560)   # there
#
# QUICK=1 runs one tiny case per setting (8 frames at 64x64, 2 repeats): a smoke test of the
# script, here on the CPU with DEVICE=cpu.
set -euo pipefail
cd "$(dirname "$0")/.."

SITE=.gpu_site
PACKAGES=(fvcore iopath yacs termcolor pytorchvideo parameterized)

if [[ "${1:-}" == "--prepare" ]]; then
    src=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    rm -rf "$SITE" && mkdir -p "$SITE"
    for pkg in "${PACKAGES[@]}"; do
        cp -r "$src/$pkg" "$SITE/"
    done
    grep -qxF "/$SITE/" .git/info/exclude 2>/dev/null || echo "/$SITE/" >>.git/info/exclude
    du -sh "$SITE"
    exit 0
fi

export PYTHONPATH="$PWD:$PWD/$SITE${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
OUT_FILE="${OUT:-.}/BENCHMARKS-gpu.md"
if [[ "${QUICK:-0}" == 1 ]]; then
    SHAPE=(--frames 8 --size 64 --batch 2 --train-batch 2 --repeats 2 --warmup 1)
    ALPHAS=(0.5)
else
    SHAPE=(--frames 8 --size 224 --batch 8 --train-batch 8 --repeats 20 --warmup 5)
    ALPHAS=(0.5 0.2 0.1)
fi

"$PYTHON" - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

# One case; a case that fails (a compile error, say) is recorded with the end of its error output
# and the others still run.
bench() {
    echo "== $*" >&2
    local log
    log=$(mktemp)
    if ! "$PYTHON" tools/bench_models.py --model i3d_r50 --device "$DEVICE" "${SHAPE[@]}" \
        --append "$OUT_FILE" "$@" 2>"$log"; then
        {
            printf '\n`python tools/bench_models.py --model i3d_r50 --device %s %s %s` FAILED:\n\n' \
                "$DEVICE" "${SHAPE[*]}" "$*"
            tail -n 5 "$log" | sed 's/^/    /'
        } >>"$OUT_FILE"
        tail -n 5 "$log" >&2
    fi
    rm -f "$log"
}

for dtype in float32 bfloat16; do
    for compile in none default; do
        for alpha in "${ALPHAS[@]}"; do
            extra=()
            [[ "$alpha" == 0.5 && "$compile" == none ]] && extra=(--baseline pytorchvideo)
            bench --alpha "$alpha" --dtype "$dtype" --compile "$compile" "${extra[@]}"
        done
    done
done
echo "tables appended to $OUT_FILE" >&2
