"""Known-effect cohorts and a memorizing learner shared by the pipeline tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator

from hte.data.simulate import simulate_cohort


def cohort_with_age_crs_interaction(seed: int = 11, n: int = 1500) -> pd.DataFrame:
    """The synthetic cohort with CRS redrawn from a logistic model with a strong age x arm
    interaction, so a logistic interaction model is well specified (grade 1 when CRS)."""
    cohort = simulate_cohort(n=n, seed=seed)
    rng = np.random.default_rng(seed)
    z = (cohort["age"].to_numpy() - 65.0) / 10.0
    w = (cohort["treatment"] == "cart").to_numpy()
    crs = rng.random(n) < expit(-0.5 + w * (0.5 + 2.0 * z))
    cohort["crs"] = crs.astype(int)
    cohort["crs_grade"] = crs.astype(int)
    return cohort


class SeenRows(BaseEstimator):
    """Predicts 1 for a row it was fitted on and 0 for any other row (a pure memorizer)."""

    def fit(self, X, **kwargs):
        self.seen_ = {tuple(row) for row in np.asarray(X, dtype=float)}
        return self

    def predict(self, X):
        return np.array([float(tuple(row) in self.seen_) for row in np.asarray(X, dtype=float)])
