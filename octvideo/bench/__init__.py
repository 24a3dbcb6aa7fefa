"""Benchmarks of octvideo, run through one entry point, ``python tools/bench.py SUBCOMMAND``.

``timing`` holds the one implementation of interleaved timing (rounds that alternate or rotate
the calls, warm-up, per-round ratios with their spread) that every benchmark and the study's cost
measurement (``measure``, used by ``octvideo sweep``) share; ``record`` files a table under the
command that made it; ``cli`` is the entry point's parser and dispatcher. Each other module is one
subcommand: ``models``, ``layouts``, ``conv_views``, ``data_loader``, ``predict`` and
``long_video``. Nothing is imported here, so ``octvideo.bench.measure`` costs only torch and
``octvideo.ops``.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the FLOPs and memory
savings these benchmarks hold the implementation to.
"""
