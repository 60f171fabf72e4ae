"""Benchmark and diagnosis scripts of hte, outside the installed package.

Run them from the project's root as modules, e.g. ``python -m benchmarks.bench_csf``; ``make bench``
runs the recorded ones and writes their results under ``experiments/benchmarks/``. They import
hte; nothing in hte imports them.
"""
