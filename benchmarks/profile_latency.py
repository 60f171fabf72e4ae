"""Latency of the profile explorer on a run folder: ``python -m benchmarks.profile_latency RUN_DIR``.

Loads the explorer once (timed), warms it with one query, then times ``effects`` on ``--n``
seeded random profiles (numbers uniform between the fields' 1st and 99th percentiles, yes/no and
categories uniform), and ``waterfall`` / ``what_moves_it`` on a few. Prints median, p95 and max in
milliseconds as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hte.pipeline.profile import ProfileExplorer
from hte.pipeline.profile_fields import ProfileField


def random_profile(fields: list[ProfileField], rng: np.random.Generator) -> dict:
    """One profile inside the fields' 1st-99th percentile ranges."""
    out: dict[str, object] = {}
    for f in fields:
        if f.kind == "boolean":
            out[f.name] = bool(rng.integers(2))
        elif f.kind == "category":
            out[f.name] = str(f.choices[int(rng.integers(len(f.choices)))])
        elif f.kind == "integer":
            out[f.name] = int(rng.integers(round(f.p01), round(f.p99) + 1))
        else:
            out[f.name] = float(rng.uniform(f.p01, f.p99))
    return out


def _summary(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {
        "n": len(ms),
        "median_ms": round(float(np.median(ms)), 2),
        "p95_ms": round(float(np.quantile(ms, 0.95)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def _timed(call, *args) -> float:
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


def bench(run_dir: Path, n: int = 200, seed: int = 0, analysis: str | None = None) -> dict:
    """Load, warm-up and per-call latencies of one run folder's explorer."""
    start = time.perf_counter()
    explorer = ProfileExplorer.from_run(run_dir, analysis)
    load = time.perf_counter() - start
    fields = explorer.fields()
    rng = np.random.default_rng(seed)
    profiles = [random_profile(fields, rng) for _ in range(n)]
    first = _timed(explorer.effects, explorer.default_profile())
    effects = [_timed(explorer.effects, p) for p in profiles]
    targets = explorer.targets()
    explorer.waterfall(profiles[0], targets[0])  # builds the TreeSHAP explainer once
    waterfall = [_timed(explorer.waterfall, p, targets[0]) for p in profiles[:20]]
    field = next((f.name for f in fields if f.name == "age"), fields[0].name)
    moves = [_timed(explorer.what_moves_it, p, field, targets[0], 25) for p in profiles[:10]]
    return {
        "run_dir": str(run_dir),
        "load_seconds": round(load, 3),
        "first_effects_ms": round(first * 1000, 2),
        "effects": _summary(effects),
        f"waterfall_{targets[0]}": _summary(waterfall),
        f"what_moves_it_{field}_{targets[0]}_25_points": _summary(moves),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--n", type=int, default=200, help="random profiles timed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--analysis", default=None)
    args = parser.parse_args(argv)
    print(json.dumps(bench(args.run_dir, args.n, args.seed, args.analysis), indent=2))


if __name__ == "__main__":
    main()
