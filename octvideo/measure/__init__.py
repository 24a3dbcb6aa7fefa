"""Measuring networks side by side, shared by the study (``octvideo sweep``, through
``octvideo.engine.sweep``) and the benchmarks (``octvideo.bench``).

``timing`` is the one implementation of interleaved timing (rounds that alternate or rotate the
calls, warm-up, per-round ratios with their spread) and needs only torch; ``steps`` holds the
inference and training-step calls of a model, run as the commands run them, and the activation
memory a step saves, and needs torch and ``octvideo.ops``; ``machine`` names the machine the
measurements ran on (CPU, GPU, torch). The package sits below the data, engine and bench layers,
so the engine can measure without importing the benchmarks; nothing is imported here.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the FLOPs and memory
savings these measurements hold the implementation to.
"""
