"""One cross-fitting per analysis: in a default-like run every nuisance model is fitted once per
analysis and seed, plus once per held-out fold (counted by wrapping the learner factories), and
the held-out refits that share fold nuisances never let a patient's outcome into the model that
ranks it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn.base import BaseEstimator

import hte.design.propensity as propensity_module
import hte.estimators.nuisance as nuisance_module
import hte.estimators.shared_nuisances as shared_module
import hte.pipeline.heterogeneity as heterogeneity
import hte.pipeline.stages as stages
from hte.config import TimeZeroAnalysis, load_config
from hte.data.simulate import simulate_cohort
from hte.estimators.shared_nuisances import Nuisances, fit_nuisances
from hte.pipeline import run_experiment
from hte.pipeline.heterogeneity import (
    HELDOUT_FOLDS,
    N_FOLDS,
    fold_nuisances,
    heldout_effects,
)
from hte.pipeline.stages import FittedEffect, design_diagnostics, prepare_analysis

# The default config's estimator kinds and targets (both OS horizons, both CRS outcomes), small.
DEFAULT_LIKE = """\
name: counted
data: {source: synthetic, n: 400}
time_zero: [decision]
outcomes:
  os: {survival_horizon: 12, rmst_horizon: 24}
  crs: {any_grade: true, grade3: auto}
estimators:
  - {name: causal_survival_forest, kind: causal_survival_forest, params: {n_estimators: 40}}
  - {name: dr_learner, kind: dr_learner, params: {final: forest, n_estimators: 40}}
  - {name: cox_interaction, kind: cox_interaction}
  - {name: crs_causal_forest, kind: crs_causal_forest, params: {n_estimators: 40}}
  - {name: logistic_interaction, kind: logistic_interaction, params: {penalty: 1.0}}
  - {name: crs_bcf, kind: crs_bcf, params: {num_mcmc: 20, mu_trees: 10, tau_trees: 5}}
evaluation: {robustness: false}
explanation: {shap: false, subgroup_rules: true}
seeds: {global: 11}
"""


@pytest.fixture(autouse=True)
def _own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HTE_HOME", str(tmp_path / "home"))


def test_each_nuisance_is_fitted_once_per_analysis_and_once_per_heldout_fold(tmp_path, monkeypatch):
    counts: Counter = Counter()

    def counted(name, original):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)

        return wrapper

    # every propensity model hte fits goes through propensity._fit; every survival model through
    # make_survival_learner (event and censoring: two per cross-fitting fold); every CRS arm-risk
    # model through shared_nuisances._outcome_model
    monkeypatch.setattr(propensity_module, "_fit", counted("propensity", propensity_module._fit))
    monkeypatch.setattr(
        nuisance_module,
        "make_survival_learner",
        counted("survival", nuisance_module.make_survival_learner),
    )
    monkeypatch.setattr(
        shared_module, "_outcome_model", counted("crs_arm_risks", shared_module._outcome_model)
    )
    monkeypatch.setattr(heterogeneity, "N_JOBS", 1)  # held-out refits in this process: counted
    monkeypatch.setattr(stages, "FIT_JOBS", 1)  # estimator fits in this process: counted
    path = tmp_path / "counted.yaml"
    path.write_text(DEFAULT_LIKE, encoding="utf-8")
    result = run_experiment(
        load_config(path), output_root=tmp_path, progress=False, write_models=False
    )
    assert result.metrics["failures"] == []
    folds = 5  # the nuisances' cross-fitting folds
    crs_outcomes = 2  # any grade and grade >= 3 (the synthetic cohort has grades)
    cross_fits = 1 + N_FOLDS  # the analysis, plus each held-out training half
    # the CRS causal forest and the CRS BCF read the analysis's; in their held-out refits
    # (HELDOUT_FOLDS.crs per outcome) each cross-fits its own inside the training half: the
    # forest the propensity and arm risks, the BCF the propensity. Each BCF fit also fits one
    # propensity model on all its rows, not a cross-fitted nuisance: the one that scores new
    # patients (its prognostic forest reads e(x))
    crs_refits = HELDOUT_FOLDS.crs * crs_outcomes
    bcf_fits = crs_outcomes + crs_refits
    assert counts == {
        "propensity": folds * (cross_fits + 2 * crs_refits) + bcf_fits,
        "survival": 2 * folds * cross_fits,  # event and censoring, one grid for both horizons
        # CRS scores, AIPW baselines and the CRS forest: the analysis's; plus its refits'
        "crs_arm_risks": folds * (crs_outcomes + crs_refits),
    }, counts
    stored = Nuisances.load(result.run_dir / "nuisances" / "decision.npz")
    assert stored.horizons == (12.0, 24.0) and set(stored.crs) == {"crs", "crs_g3"}


# ------------------------------------------------------------------------------------------------
# leakage through shared fold nuisances


class _SeenRowsShared(BaseEstimator):
    """A memorizer on the shared path: remembers every analysis row whose data reached it, as
    rows to fit on or as rows its nuisances were fitted on; predicts 1 for those, 0 otherwise."""

    def __init__(self, lookup=None, horizon=12.0, random_state=None):
        self.lookup = lookup  # covariate row -> analysis row
        self.horizon = horizon
        self.random_state = random_state
        self.target = "survival"
        self.grid_size, self.n_folds = 25, 5
        self.event_learner = self.censoring_learner = "hazard_gbm"

    def fit(self, X, *, time=None, event=None, treatment=None, nuisances=None):
        assert nuisances is not None, "the shared path was not taken"
        nuisances.check_rows(X.treatment, X.row_ids)
        self.seen_ = set(X.row_ids.tolist()) | set(nuisances.row_ids.tolist())
        return self

    def predict(self, X):
        rows = [self.lookup[tuple(r)] for r in np.asarray(X, dtype=float)]
        return np.array([float(r in self.seen_) for r in rows])


def test_heldout_refits_on_shared_fold_nuisances_never_saw_the_ranked_patient():
    seed = 4
    data = prepare_analysis(simulate_cohort(n=300, seed=seed), TimeZeroAnalysis(mode="decision"))
    data.nuisances = fit_nuisances(data.effect_data, horizons=[12.0], random_state=seed, n_jobs=1)
    design_diagnostics(data, seed)
    lookup = {tuple(r): i for i, r in enumerate(data.X.to_numpy(dtype=float))}
    assert len(lookup) == len(data.cohort)  # rows are distinct: the lookup is one-to-one
    memo = _SeenRowsShared(lookup=lookup, random_state=seed)
    fit = FittedEffect("memo", "causal_survival_forest", "os", "survival", 12.0, model=memo)
    folds = fold_nuisances(data, seed, data.nuisances.horizons)
    for fold in folds:  # each fold's nuisances: its training rows, none of its test rows
        np.testing.assert_array_equal(np.sort(fold.nuisances.row_ids), np.sort(fold.train))
        assert not set(fold.nuisances.row_ids) & set(fold.test)
    effects = heldout_effects(fit, data, seed, folds=folds)
    assert effects.shape == (len(data.cohort),)
    assert np.all(effects == 0.0)  # every row predicted, never by a model whose data held it
    whole = _SeenRowsShared(lookup=lookup, random_state=seed)
    assert np.all(whole.fit(data.effect_data, nuisances=data.nuisances).predict(data.X) == 1.0)
    # nuisances of all patients cannot be slipped into a held-out refit
    with pytest.raises(ValueError, match="not the"):
        _SeenRowsShared(lookup=lookup, random_state=seed).fit(
            data.effect_data.subset(folds[0].train), nuisances=data.nuisances
        )
