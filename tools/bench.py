"""The benchmarks' one entry point: ``python tools/bench.py SUBCOMMAND [options]``.

``python tools/bench.py --help`` lists the subcommands (models, layouts, conv-views, data-loader,
predict, long-video); the code is the ``octvideo.bench`` package, and ``octvideo.measure.timing``
is the interleaved timing that every subcommand and ``octvideo sweep`` share.

    python tools/bench.py models --model i3d_r50 --alpha 0.5 --threads 2 --baseline pytorchvideo
"""

from __future__ import annotations

import sys

from octvideo.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
