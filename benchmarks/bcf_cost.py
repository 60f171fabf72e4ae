"""CPU seconds, accuracy and coverage of one Bayesian causal forest fit under lighter settings.

python -m benchmarks.bcf_cost SEED [SEED ...]

On the default synthetic cohort (n = 2,000) of each seed, the shared survival nuisances are
cross-fitted once; then the BCF sampler of ``hte.estimators.bcf`` is run on the AIPCW
pseudo-outcome of survival at 12 months and of RMST to 24 months with the package's settings
and with one of them lighter (100 draws, 5 warm-start sweeps, 100 prognostic trees). Prints one
JSON row per seed, target and setting: sampler CPU seconds (``time.process_time``), nMSE
against the true effect, 95% coverage and the share of intervals excluding 0 (docs/speed.md).
"""

from __future__ import annotations

import sys
import time

from benchmarks.bcf_trial import posterior_scores, print_rows_per_seed, pseudo_outcome_cases
from hte.estimators.bcf import _sample

SETTINGS = {
    "package": {"num_gfr": 10, "num_mcmc": 200, "mu_trees": 200, "tau_trees": 50},
    "100 draws": {"num_gfr": 10, "num_mcmc": 100, "mu_trees": 200, "tau_trees": 50},
    "5 warm-start sweeps": {"num_gfr": 5, "num_mcmc": 200, "mu_trees": 200, "tau_trees": 50},
    "100 prognostic trees": {"num_gfr": 10, "num_mcmc": 200, "mu_trees": 100, "tau_trees": 50},
}


def rows_for_seed(seed: int):
    for target, X, W, y, e, _, truth in pseudo_outcome_cases(seed):
        for name, setting in SETTINGS.items():
            clock = time.process_time()
            model = _sample(X, W, y, e, num_burnin=0, variance_trees=0, seed=seed, **setting)
            cpu = time.process_time() - clock
            scores = posterior_scores(model, X, W, e, truth)
            yield {
                "seed": seed,
                "target": target,
                "setting": name,
                "cpu_seconds": round(cpu, 2),
                **scores,
            }


if __name__ == "__main__":
    print_rows_per_seed(rows_for_seed, sys.argv[1:], __doc__)
