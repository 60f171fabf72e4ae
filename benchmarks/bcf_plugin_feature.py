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

import sys

import numpy as np

from benchmarks.bcf_trial import posterior_scores, print_rows_per_seed, pseudo_outcome_cases, score
from hte.estimators.bcf import _sample


def rows_for_seed(seed: int):
    for target, X, W, y, e, (mu1, mu0, m), truth in pseudo_outcome_cases(seed):
        g = mu1 - mu0
        variants = {"base": X, "g": np.column_stack([X, g]), "g_m": np.column_stack([X, g, m])}
        plug_in = score(g, (g, g), truth)["nmse"]
        row = {"seed": seed, "target": target, "plugin_nmse": round(plug_in, 3)}
        for name, features in variants.items():
            model = _sample(
                features,
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
            row[name] = posterior_scores(model, features, W, e, truth)
        yield row


if __name__ == "__main__":
    print_rows_per_seed(rows_for_seed, sys.argv[1:], __doc__)
