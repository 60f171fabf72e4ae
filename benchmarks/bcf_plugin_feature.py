"""Trial for issue 10, item 2: BCF on the AIPCW pseudo-outcome with the nuisances' own plug-in
effect as an extra covariate.

python -m benchmarks.bcf_plugin_feature SEED [SEED ...]

The shared survival nuisances already hold, out of fold for every patient, E[f(T) | x, w] under
each arm (mu1, mu0); their difference g(x) is a plug-in effect estimate that a tree can split on
once instead of rebuilding it from several covariates. On the default cohort (n = 2,000) of each
seed, the BCF sampler of ``hte.estimators.bcf`` (package settings) is fitted on the covariates
(``base``), on the covariates and g (``g``), and on the covariates, g and the plug-in prognosis
m = e mu1 + (1 - e) mu0 (``g_m``), for survival at 12 months and RMST to 24 months. Prints one JSON
row per seed and target: nMSE against the true effect, 95% coverage and the share of intervals
excluding 0 for each variant, and the plug-in g's own nMSE (docs/bcf.md).

Scored on the training patients, as ``bcf_trial`` does; g there is out of fold. A model for new
patients would need g from the fold models, which the nuisances do not keep: not built, since the
trial did not show a gain.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from benchmarks.bcf_trial import TARGETS, cohort, score
from hte.estimators.bcf import _sample
from hte.estimators.shared_nuisances import fit_nuisances


def _fit_and_score(X, W, y, e, truth, seed: int) -> dict:
    model = _sample(
        X,
        W,
        y,
        e,
        num_gfr=10,
        num_burnin=0,
        num_mcmc=200,
        mu_trees=200,
        tau_trees=50,
        variance_trees=0,
        seed=seed,
    )
    draws = model.predict(X, np.zeros(len(W)), e, terms="cate", type="posterior")
    draws = np.asarray(draws, dtype=float).reshape(len(W), -1)
    band = tuple(np.quantile(draws, [0.025, 0.975], axis=1))
    scores = score(draws.mean(axis=1), band, truth)
    return {k: round(scores[k], 3) for k in ("nmse", "coverage", "excludes_0")}


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
        g = out["mu1"] - out["mu0"]
        variants = {
            "base": X,
            "g": np.column_stack([X, g]),
            "g_m": np.column_stack([X, g, out["m"]]),
        }
        row = {
            "seed": seed,
            "target": target,
            "plugin_nmse": round(score(g, (g, g), truth)["nmse"], 3),
        }
        for name, features in variants.items():
            row[name] = _fit_and_score(features, W, out["pseudo_outcome"], e, truth, seed)
        yield row


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    for seed in (int(s) for s in argv):
        for row in rows_for_seed(seed):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
