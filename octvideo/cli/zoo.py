"""``octvideo import``: an octvideo checkpoint from published weights (``octvideo.engine.zoo``).

    octvideo import SLOW_8x8_R50.pyth --from pytorchvideo --model slow_r50 --out slow_r50_k400.ckpt

writes ``slow_r50_k400.ckpt``, which ``predict``, ``export`` and ``train model.pretrained=`` take
as it is, and ``slow_r50_k400.yaml``, the run config ``test --cfg`` takes with it.
"""

from __future__ import annotations

import argparse

from octvideo.argtypes import number, shown_path
from octvideo.cli import print_last


def import_command(args: argparse.Namespace) -> int:
    """Writes the checkpoint and its run config, and says what they hold."""
    from octvideo.engine.zoo import import_checkpoint

    result = import_checkpoint(
        args.src,
        source=args.source,
        model=args.model,
        out=args.out,
        classes=args.classes,
        alpha=args.alpha,
        clip=args.clip,
    )
    meta = result.meta
    model, clip = meta["model"], meta["clip"]
    views = f"{clip['test_num_clips']}x{clip['test_num_crops']} views of {clip['test_crop_size']}"
    fps = f" at {clip['target_fps']:g} fps" if clip.get("target_fps") else ""
    sf = f", SlowFast alpha {clip['slowfast_alpha']}" if clip.get("slowfast_alpha") else ""
    checkpoint = shown_path(result.checkpoint)
    print_last(
        f"wrote {checkpoint}: {model['name']} alpha {model['alpha']}, "
        f"{len(meta['classes'])} classes, {clip['num_frames']} frames {clip['sampling_rate']} "
        f"apart{fps}{sf} (clip from {result.clip_source}), test {views}\n"
        f"run config: {shown_path(result.config)} (--cfg of octvideo test and octvideo train, with "
        f"--ckpt {checkpoint} or model.pretrained={checkpoint})"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import",
        help="an octvideo checkpoint from PyTorchVideo zoo, torchvision or octvideo weights",
        description=(
            "Write a self-describing octvideo checkpoint (model, class names, clip protocol) "
            "from weights made elsewhere, and a run config beside it for 'octvideo test'."
        ),
    )
    p.add_argument("src", help="the weights file (e.g. SLOW_8x8_R50.pyth)")
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SOURCE",
        help="pytorchvideo (a zoo .pyth), torchvision (a 2D ImageNet ResNet, inflated) or "
        "octvideo (a checkpoint to octavise or name)",
    )
    p.add_argument("--model", required=True, help="octvideo model name, e.g. slow_r50")
    p.add_argument(
        "--classes",
        default=None,
        help="kinetics400, a class-names file (one a line) or a number of classes "
        "(default: the source's own)",
    )
    p.add_argument(
        "--alpha",
        type=number,
        default=None,
        help="write the octave network of this low-frequency share (e.g. 0.1), sliced from "
        "the vanilla weights (default: the source's: 0 for pytorchvideo and torchvision)",
    )
    p.add_argument(
        "--clip",
        default=None,
        metavar="TxTAU",
        help="frames x stride (SlowFast: the slow pathway's) for weights without a protocol "
        "(default: the TxTAU of a zoo file name, else 8x8)",
    )
    p.add_argument("--out", required=True, help="the checkpoint to write (.ckpt)")
    p.set_defaults(func=import_command)
