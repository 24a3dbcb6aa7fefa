"""Benchmarks of octvideo, run through one entry point, ``python tools/bench.py SUBCOMMAND``.

Every benchmark times through ``octvideo.measure`` (interleaved rounds and per-round ratios in
``octvideo.measure.timing``; the model calls in ``octvideo.measure.steps``), which the study's
cost measurement (``octvideo sweep``) shares. ``record`` files a table under the command that made
it; ``cli`` is the entry point's parser and dispatcher. Each other module is one subcommand:
``models``, ``layouts``, ``conv_views``, ``data_loader``, ``predict`` and ``long_video``. Nothing
is imported here, so a subcommand costs only what its own module imports.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the FLOPs and memory
savings these benchmarks hold the implementation to.
"""
