#!/usr/bin/env bash
# Issue 7's benchmark on a CUDA machine: Oct-I3D-R50 at alpha 0.5, 0.2 and 0.1 against its alpha-0
# twin (and PyTorchVideo's I3D-R50 at alpha 0.5), in float32 and bfloat16, eager and compiled,
# batch 8 inference and batch 8 training steps at 8x224x224, and the same models in NCDHW against
# channels-last memory. Each case is one `tools/bench.py models` or `tools/bench.py layouts` run
# (the variants interleaved); every table is appended to $OUT/BENCHMARKS-gpu.md (or
# ./BENCHMARKS-gpu.md without $OUT) with its command, date and GPU.
#
# The GPU machines lent here have torch but no network and none of fvcore, iopath, yacs,
# termcolor, pytorchvideo, parameterized. Copy them (pure Python) out of this checkout's .venv
# first, then carry the folder:
#
#     bash tools/bench_gpu.sh --prepare         # here: fills .gpu_site/ (ignored by git)
#     run(command="bash tools/bench_gpu.sh", carry=[".gpu_site"], timeout_s=580)   # there
#
# `tools/bench.py predict` also needs PyAV and decord (compiled, 140 MB with their libraries: too
# large to carry); where the machine lacks them that case fails alone, with its error recorded.
#
# It first runs tools/check_device.py (float64: the device's channels-last paths against the
# CPU's plain path; 6-13 s on a 2-CPU machine). A lent machine gives a session 15 minutes in
# all, its start included, and compiling one case takes minutes, so the timed cases run
# most-wanted first: alpha 0.5 eager with the PyTorchVideo baseline (float32, then bfloat16),
# `tools/bench.py layouts` (contiguous against channels-last at alpha 0.5 and 0, float32 then
# bfloat16: whether trainer.memory_format=auto should pick channels-last on GPUs too),
# `tools/bench.py predict` (issue 25: `octvideo predict` over 40 clips of 320-pixel H.264 with 0,
# 2 and 8 decoding workers against the model's decode-free time, Oct-I3D-R50 alpha 0.1 at
# 8x224x224 on the GPU), alpha 0.2 and 0.1 eager, then the compiled `models` cases in the same
# order. The whole run keeps to BUDGET_S seconds (default 540): a case runs under `timeout` with
# the time that is left, a case that would start with less than MIN_EAGER_S (45), MIN_PREDICT_S
# (120) or MIN_COMPILED_S (150) seconds left is skipped, and both are written to the file as such.
#
# QUICK=1 runs one tiny case per setting (8 frames at 64x64, 2 repeats): a smoke test of the
# script, here on the CPU with DEVICE=cpu.
set -euo pipefail
cd "$(dirname "$0")/.."

SITE=.gpu_site
PACKAGES=(fvcore iopath yacs termcolor pytorchvideo parameterized)

# A refusal is one line naming the argument or setting, its bound and what to write, exit
# status 2, before any work (as tools/bench.py and tools/check_device.py refuse theirs).
refuse() {
    echo "tools/bench_gpu.sh: error: $*" >&2
    exit 2
}
if (($# > 1)) || [[ $# == 1 && "$1" != --prepare ]]; then
    refuse "unexpected argument(s) '$*': give none (run the benchmark) or --prepare (fill $SITE/)"
fi

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
BUDGET_S=${BUDGET_S:-540}
MIN_EAGER_S=${MIN_EAGER_S:-45}
MIN_PREDICT_S=${MIN_PREDICT_S:-120}
MIN_COMPILED_S=${MIN_COMPILED_S:-150}
[[ "$DEVICE" =~ ^(cpu|cuda(:[0-9]{1,3})?)$ ]] || refuse "DEVICE=$DEVICE: give cpu, cuda or cuda:N"
[[ "${QUICK:-0}" =~ ^[01]$ ]] || refuse "QUICK=$QUICK: give 1 (one tiny case per setting) or 0"
# whole seconds, from $2 to a day: `seconds NAME LOW`
seconds() {
    local value=${!1}
    if [[ ! "$value" =~ ^[0-9]{1,6}$ ]] || ((10#$value < $2 || 10#$value > 86400)); then
        refuse "$1=$value: give a whole number of seconds from $2 to 86400"
    fi
    printf -v "$1" '%d' "$((10#$value))" # 010 is 10 s, not octal 8
}
seconds BUDGET_S 1
seconds MIN_EAGER_S 0
seconds MIN_PREDICT_S 0
seconds MIN_COMPILED_S 0
OUT_FILE="${OUT:-.}/BENCHMARKS-gpu.md"
if [[ "${QUICK:-0}" == 1 ]]; then
    SHAPE=(--frames 8 --size 64 --batch 2 --train-batch 2 --repeats 2 --warmup 1)
    PREDICT=(--clips 2 --seconds 1 --short-side 64 --frames 4 --size 32 --batch-size 2 --rounds 1
        --workers 1)
    ALPHAS=(0.5)
else
    SHAPE=(--frames 8 --size 224 --batch 8 --train-batch 8 --repeats 20 --warmup 5)
    PREDICT=(--clips 40 --frames 8 --size 224 --batch-size 8 --rounds 2 --workers 2 8)
    ALPHAS=(0.5 0.2 0.1)
fi

"$PYTHON" - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

START=$SECONDS
RAN=0 FAILED=0 SKIPPED=0

# Float64 first: the timings mean something only if the device computes what the CPU computes.
check_log=$(mktemp)
timeout --kill-after=10 120 "$PYTHON" tools/check_device.py --device "$DEVICE" >"$check_log" 2>&1 ||
    echo "(exit $?)" >>"$check_log"
{
    printf '\n`python tools/check_device.py --device %s`:\n\n' "$DEVICE"
    sed 's/^/    /' "$check_log"
} >>"$OUT_FILE"
cat "$check_log" >&2
rm -f "$check_log"

# One case: `bench SECONDS_NEEDED SUBCOMMAND ARGS...` with SUBCOMMAND models, layouts or predict
# (which takes the PREDICT shape), run as `tools/bench.py SUBCOMMAND ...`. A case that fails (a
# compile error, say) or runs out of time is recorded with the end of its output, one that would
# start too late is recorded as skipped, and the others still run.
bench() {
    local need=$1 subcommand=$2 shape=("${SHAPE[@]}")
    [[ "$subcommand" == predict ]] && shape=("${PREDICT[@]}")
    shift 2
    local left=$((BUDGET_S - (SECONDS - START)))
    local args=("$subcommand" --model i3d_r50 --device "$DEVICE" "${shape[@]}" "$@")
    local cmd="python tools/bench.py ${args[*]}"
    if ((left < need)); then
        printf '\n`%s` not run: %d s of the %d s budget left, it needs %d.\n' \
            "$cmd" "$left" "$BUDGET_S" "$need" >>"$OUT_FILE"
        echo "== skipped (${left} s left): $*" >&2
        SKIPPED=$((SKIPPED + 1))
        return
    fi
    echo "== $* (${left} s left)" >&2
    local log rc=0
    log=$(mktemp)
    timeout --kill-after=10 "$left" "$PYTHON" tools/bench.py "${args[@]}" \
        --append "$OUT_FILE" 2>"$log" || rc=$?
    if ((rc == 0)); then
        RAN=$((RAN + 1))
    else
        local why="FAILED (exit $rc)"
        ((rc == 124 || rc == 137)) && why="stopped at the end of the budget ($left s)"
        {
            printf '\n`%s` %s:\n\n' "$cmd" "$why"
            tail -n 5 "$log" | sed 's/^/    /'
        } >>"$OUT_FILE"
        tail -n 5 "$log" >&2
        FAILED=$((FAILED + 1))
    fi
    rm -f "$log"
}

for compile in none default; do
    need=$MIN_EAGER_S
    [[ "$compile" != none ]] && need=$MIN_COMPILED_S
    for alpha in "${ALPHAS[@]}"; do
        for dtype in float32 bfloat16; do
            extra=()
            [[ "$alpha" == 0.5 && "$compile" == none ]] && extra=(--baseline pytorchvideo)
            bench "$need" models --alpha "$alpha" --dtype "$dtype" --compile "$compile" \
                "${extra[@]}"
        done
        if [[ "$alpha" == 0.5 && "$compile" == none ]]; then
            for dtype in float32 bfloat16; do
                bench "$MIN_EAGER_S" layouts --alphas 0.5 0 --dtype "$dtype"
            done
            bench "$MIN_PREDICT_S" predict --alpha 0.1 --threads 2
        fi
    done
done
echo "$RAN cases ran, $FAILED failed, $SKIPPED skipped in $((SECONDS - START)) s;" \
    "tables appended to $OUT_FILE" >&2
