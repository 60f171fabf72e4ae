"""How many warm-start sweeps does a BCF need for point effects? (held-out refits, docs/bcf.md)

A held-out BCF refit is read only for its posterior mean (``point_only_params``: 100 retained
draws). Of its sampler's time about half goes to the 10 grow-from-root warm-start sweeps. This
benchmark asks whether fewer sweeps change the posterior mean by more than running the same
sampler again with another seed does.

On default cohorts (n = 2,000) it cross-fits the inputs once per target (survival at 12 months
and RMST to 24 months: the shared nuisances' pseudo-outcome; any-grade CRS: the 0/1 outcome and
a cross-fitted propensity, as ``hte.estimators.bcf`` does) and samples the shipped BCF
(``hte.estimators.bcf._sample``) with 100 retained draws after 10, 5 and 3 sweeps. Per fit it
prints the nMSE of the posterior mean against the true effect, the mean squared difference from
the 10-sweep mean (share of the true effect's variance) and the sampler's CPU seconds. The row
"10, other seed" is the same sampler with another seed: the difference any rerun makes.

    python -m benchmarks.bcf_warm_start --seeds 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import numpy as np

from benchmarks.bcf_trial import TARGETS, cohort, pseudo_outcome_cases
from hte.estimators.bcf import POINT_DRAWS, BayesianCausalForest, _sample

SETTINGS = (  # label, warm-start sweeps, sampler seed offset
    ("10", 10, 0),
    ("10, other seed", 10, 1000),
    ("5", 5, 0),
    ("3", 3, 0),
)
# the shipped forests' sizes (the CRS BCF has the same defaults)
SHIPPED_TREES = {
    k: BayesianCausalForest().get_params()[k] for k in ("mu_trees", "tau_trees", "variance_trees")
}


def _crs_case(seed: int, n: int) -> tuple:
    from hte.design.propensity import cross_fit_propensity
    from hte.estimators import CRSBayesianCausalForest

    shipped = CRSBayesianCausalForest().get_params()  # its own propensity cross-fit
    data = cohort("default", n, seed)
    X = np.asarray(data.X, dtype=float)
    W = np.asarray(data.treatment, dtype=float)
    y = data.cohort["crs"].to_numpy(float)
    e = cross_fit_propensity(
        X, W, n_folds=shipped["n_folds"], random_state=seed, clip=shipped["propensity_clip"]
    )
    return "crs", X, W, y, e, data.cohort[TARGETS["crs"][0]].to_numpy(float)


def cases(seed: int, n: int) -> Iterator[tuple]:
    """(target, X, W, y, e, true effect) for survival, RMST and any-grade CRS of one cohort."""
    for target, X, W, y, e, _, truth in pseudo_outcome_cases(seed, n):
        yield target, X, W, y, e, truth
    yield _crs_case(seed, n)


def posterior_mean(X, W, y, e, sweeps: int, seed: int) -> tuple[np.ndarray, float]:
    """The point-only refit's posterior mean of the effect and the sampler's CPU seconds."""
    started = time.process_time()
    model = _sample(
        X,
        W,
        y,
        e,
        num_gfr=sweeps,
        num_burnin=0,
        num_mcmc=POINT_DRAWS,
        seed=seed,
        **SHIPPED_TREES,
    )
    seconds = time.process_time() - started
    draws = model.predict(X, np.zeros(len(W)), e, terms="cate", type="posterior")
    return np.asarray(draws, dtype=float).reshape(len(W), -1).mean(axis=1), seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args(argv)
    print(
        "| seed | target | sweeps | nMSE | difference from 10 sweeps | sampler CPU s |\n"
        "|---|---|---|---|---|---|"
    )
    for seed in args.seeds:
        for target, X, W, y, e, truth in cases(seed, args.n):
            spread = np.var(truth)
            reference = None
            for label, sweeps, offset in SETTINGS:
                mean, seconds = posterior_mean(X, W, y, e, sweeps, seed + offset)
                reference = mean if reference is None else reference
                nmse = np.mean((mean - truth) ** 2) / spread
                moved = np.mean((mean - reference) ** 2) / spread
                print(
                    f"| {seed} | {target} | {label} | {nmse:.4f} | {moved:.4f} | {seconds:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
