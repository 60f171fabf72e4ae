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

import json
import sys
import time

import numpy as np

from benchmarks.bcf_trial import TARGETS, cohort, score
from hte.estimators.bcf import _sample
from hte.estimators.shared_nuisances import fit_nuisances

SETTINGS = {
    "package": {"num_gfr": 10, "num_mcmc": 200, "mu_trees": 200, "tau_trees": 50},
    "100 draws": {"num_gfr": 10, "num_mcmc": 100, "mu_trees": 200, "tau_trees": 50},
    "5 warm-start sweeps": {"num_gfr": 5, "num_mcmc": 200, "mu_trees": 200, "tau_trees": 50},
    "100 prognostic trees": {"num_gfr": 10, "num_mcmc": 200, "mu_trees": 100, "tau_trees": 50},
}


def rows_for_seed(seed: int):
    data = cohort("default", 2000, seed)
    t, d = data.survival_outcome()
    X = np.asarray(data.X, dtype=float)
    W = np.asarray(data.treatment, dtype=float)
    nuisances = fit_nuisances(data.effect_data, horizons=(12.0, 24.0), random_state=seed)
    for target in ("survival", "rmst"):
        column, horizon = TARGETS[target]
        truth = data.cohort[column].to_numpy(float)
        out = nuisances.pseudo_outcomes(t, d, target=target, horizon=horizon)
        e = np.clip(out["e"], 0.01, 0.99)
        for name, setting in SETTINGS.items():
            clock = time.process_time()
            model = _sample(
                X, W, out["pseudo_outcome"], e, num_burnin=0, variance_trees=0, seed=seed, **setting
            )
            cpu = time.process_time() - clock
            draws = model.predict(X, np.zeros(len(W)), e, terms="cate", type="posterior")
            draws = np.asarray(draws, dtype=float).reshape(len(W), -1)
            band = tuple(np.quantile(draws, [0.025, 0.975], axis=1))
            scores = score(draws.mean(axis=1), band, truth)
            yield {
                "seed": seed,
                "target": target,
                "setting": name,
                "cpu_seconds": round(cpu, 2),
                "nmse": round(scores["nmse"], 3),
                "coverage": round(scores["coverage"], 3),
                "excludes_0": round(scores["excludes_0"], 3),
            }


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    for seed in (int(s) for s in argv):
        for row in rows_for_seed(seed):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
