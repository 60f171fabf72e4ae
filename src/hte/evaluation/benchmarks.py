"""`make bench`: every recorded benchmark, written to experiments/benchmarks/.

1. Estimators against the synthetic truth (hte.evaluation.bench_synthetic): n = 2,000, 5 seeds,
   default and null_effect scenarios.
2. The causal survival forest on the Cui et al. (2023) designs and its scaling curve
   (hte.evaluation.bench_csf).

    python -m hte.evaluation.benchmarks [--quick]
"""

from __future__ import annotations

import argparse

from hte.evaluation import bench_csf, bench_synthetic


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run every hte benchmark.")
    parser.add_argument("--quick", action="store_true", help="one seed, small n: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        bench_synthetic.main(["--n", "1000", "--seeds", "1"])
        bench_csf.main(["--quick"])
    else:
        bench_synthetic.main([])
        bench_csf.main([])


if __name__ == "__main__":
    main()
