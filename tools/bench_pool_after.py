"""One octave layer whose kernel is 1 x 1 in space, in inference: OctConv3d's usual fast path
against "pool after", interleaved; the measurement behind ``octconv.pools_after``.

For such a kernel (I3D's 1x1x1 and 3x1x1, under the spatial octave) average pooling commutes
with the convolution, so H->L can run at full resolution and be pooled afterwards:

    A = conv(X_H, [W_HH; W_HL])      all C_out channels, full resolution
    B = conv(X_L, [W_LH; W_LL])      all C_out channels, low resolution
    Y_H = relu(A[:C_H] + upsample(B[:C_H]))
    Y_L = relu(pool(A[C_H:]) + B[C_H:])

Two convolutions instead of three, no pooling of X_H and no concatenated input, each output
channel count a multiple of the CPU's vector width (the paper's split leaves 58 of 64, 6 of
64, ...); the price is 4x the H->L multiply-adds and a copy of Y_H out of A. Both run through
``OctConv3d.forward_with_weights`` on weights packed for oneDNN, as folded inference runs them
(the variant where ``PathWeights.stacked`` is set); every case is timed both ways, whether or
not ``pools_after`` picks it, and the last columns say whether it does and how far the two
outputs differ.

    python tools/bench_pool_after.py --alpha 0.1 --threads 2 --repeats 30

BENCHMARKS.md, tenth pass, has what it measured.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from octvideo.ops import OctConv3d, OctPair
from octvideo.ops.octconv import PathWeights, pools_after, stack_weights

# (C_in, C_out, T, H=W, kT): I3D-R50's bottleneck 1x1 / 3x1x1 layers at 8x224x224, batch 1
CASES = [
    (256, 64, 8, 56, 3),  # res2 conv_a
    (64, 256, 8, 56, 1),  # res2 conv_c
    (256, 128, 4, 56, 3),  # res3 block 1 conv_a (its conv_b strides)
    (512, 128, 4, 28, 3),  # res3 conv_a
    (128, 512, 4, 28, 1),  # res3 conv_c
    (1024, 256, 4, 14, 3),  # res4 conv_a
    (256, 1024, 4, 14, 1),  # res4 conv_c
]


def _weights(layer: OctConv3d) -> tuple[PathWeights, PathWeights]:
    """(usual, pool after): the layer's weights with biases, as folding leaves them."""
    w = layer.path_weights()
    bias_h, bias_l = torch.randn(layer.out_high), torch.randn(layer.out_low)
    merged = torch.cat([w.hl, w.ll], dim=1)
    usual = PathWeights(w.hh, w.hl, w.lh, w.ll, bias_h, bias_l, merged, {})
    return usual, usual._replace(packed={}, stacked=stack_weights(usual))


def _say(line: str) -> None:
    print(line, flush=True)  # noqa: T201


def _time_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cl = torch.channels_last_3d
    _say(f"torch {torch.__version__}, {args.threads} threads, float32, channels-last, batch 1")
    _say(f"alpha {args.alpha}, {args.repeats} interleaved repeats, medians")
    _say(
        "| C_in -> C_out | T x H x W | kernel | usual ms | pool after ms | ratio "
        "| per round (range) | chosen | max abs difference |"
    )
    _say("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with torch.no_grad():
        for c_in, c_out, t, size, k_t in CASES:
            layer = OctConv3d(c_in, c_out, (k_t, 1, 1), alpha_in=args.alpha, alpha_out=args.alpha)
            usual, stacked = _weights(layer.eval())
            low = size // 2
            x = OctPair(
                torch.randn(1, layer.in_high, t, size, size).contiguous(memory_format=cl),
                torch.randn(1, layer.in_low, t, low, low).contiguous(memory_format=cl),
            )

            def run(weights, layer=layer, x=x):
                return layer.forward_with_weights(x, weights, relu=True)

            ref, alt = run(usual), run(stacked)
            diff = max((ref.high - alt.high).abs().max(), (ref.low - alt.low).abs().max())
            for _ in range(3):
                run(usual), run(stacked)
            t_usual, t_alt = [], []
            for _ in range(args.repeats):
                t_usual.append(_time_ms(lambda run=run, w=usual: run(w)))
                t_alt.append(_time_ms(lambda run=run, w=stacked: run(w)))
            rounds = [b / a for a, b in zip(t_usual, t_alt, strict=True)]
            m_usual, m_alt = statistics.median(t_usual), statistics.median(t_alt)
            _say(
                f"| {c_in} -> {c_out} | {t} x {size} x {size} | {k_t}x1x1 | {m_usual:.2f} "
                f"| {m_alt:.2f} | {m_alt / m_usual:.3f} | {statistics.median(rounds):.3f} "
                f"({min(rounds):.3f}-{max(rounds):.3f}) | {'yes' if pools_after(layer) else 'no'} "
                f"| {float(diff):.1e} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
