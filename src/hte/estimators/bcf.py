"""Bayesian causal forests (stochtree's BCF) for the OS and CRS effects, with posterior intervals.

BCF writes the outcome as y = mu(x) + tau(x) w + noise, with a BART prior on the prognostic
function mu (which also sees the propensity, against regularization-induced confounding) and a
separate, more strongly shrunk BART prior on the effect tau. The shrinkage pulls tau toward a
constant unless the data say otherwise, which is what a cohort of a few thousand patients with a
weak signal needs; the posterior draws of tau(x) give each patient an interval.

* ``BayesianCausalForest`` (OS): y is the cross-fitted AIPCW pseudo-outcome Y* of f(T) (the same
  nuisances as the causal survival forest and the DR-learner, ``hte.estimators.nuisance``), whose
  mean given (x, w) is E[f(T) | x, w]; tau is the survival-probability or RMST difference.
* ``CRSBayesianCausalForest``: y is the 0/1 CRS flag (a linear-probability BCF), tau the risk
  difference; per-arm risks come from the same posterior draws, so they differ by tau (unless a
  risk is clipped at 0 or 1 for display).

Measured against the synthetic truth in ``benchmarks/bcf_trial.py``. The sampler
(C++, single-threaded) is deterministic for a given ``random_state``. A fitted model pickles
through its JSON form (stochtree's forests are C++ objects), compressed.
"""

from __future__ import annotations

import zlib

import numpy as np
from sklearn.base import BaseEstimator

from hte.array_checks import check_new_covariates
from hte.design.effect_data import unpack_crs_fit
from hte.design.propensity import PropensityModel, cross_fit_propensity
from hte.estimators.crs_outcomes import crs_fit_inputs
from hte.estimators.nuisance import TARGETS
from hte.estimators.result import IntervalEstimateMixin
from hte.estimators.shared_nuisances import (
    Nuisances,
    PseudoOutcomeScoresMixin,
    check_crs_nuisances,
    pseudo_outcome_fit_inputs,
)


def _sample(
    X,
    W,
    y,
    e,
    *,
    num_gfr: int,
    num_burnin: int,
    num_mcmc: int,
    mu_trees: int,
    tau_trees: int,
    variance_trees: int,
    seed: int | None,
):
    """One BCF posterior: warm-start (grow-from-root) sweeps, then the retained MCMC draws.
    ``variance_trees`` > 0 adds a forest for the log noise variance (heteroskedastic BCF): the
    pseudo-outcome's noise differs by patient (censoring weights), and a single noise variance
    would over-trust the noisiest patients and under-trust the rest."""
    from stochtree import BCFModel  # imported here: a C++ extension the package loads lazily

    model = BCFModel()
    model.sample(
        X,
        W,
        y,
        e,
        num_gfr=num_gfr,
        num_burnin=num_burnin,
        num_mcmc=num_mcmc,
        general_params={
            "random_seed": 0 if seed is None else int(seed),
            "adaptive_coding": True,
            "num_threads": 1,
        },
        prognostic_forest_params={"num_trees": mu_trees},
        treatment_effect_forest_params={"num_trees": tau_trees},
        variance_forest_params={"num_trees": variance_trees},
    )
    return model


_MAY_BE_ZERO = ("num_burnin", "variance_trees")
# retained draws and warm-start sweeps of a copy fitted for point effects only
# (``point_only_params``; both are stochtree's own defaults)
POINT_DRAWS = 100
POINT_SWEEPS = 5


class _BCFBase(IntervalEstimateMixin, BaseEstimator):
    """Posterior summaries shared by the OS and CRS estimators; pickling through JSON."""

    def _check_sampler(self) -> None:
        for name in (
            "num_gfr",
            "num_burnin",
            "num_mcmc",
            "mu_trees",
            "tau_trees",
            "variance_trees",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name in _MAY_BE_ZERO else 1):
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.num_mcmc < 20:
            raise ValueError(
                f"num_mcmc must be at least 20 for posterior intervals; got {self.num_mcmc}"
            )

    def _fit_sampler(self, X, W, y, e) -> None:
        self.model_ = _sample(
            X,
            W,
            y,
            e,
            num_gfr=self.num_gfr,
            num_burnin=self.num_burnin,
            num_mcmc=self.num_mcmc,
            mu_trees=self.mu_trees,
            tau_trees=self.tau_trees,
            variance_trees=self.variance_trees,
            seed=self.random_state,
        )
        # stochtree needs a propensity for every prediction (mu sees it): new patients get one
        # from a model fitted on the whole cohort (tau itself does not depend on it)
        self.propensity_model_ = PropensityModel(clip=self.propensity_clip).fit(X, W)

    def _check_X(self, X) -> np.ndarray:
        return check_new_covariates(self, X, fitted_attribute="model_")

    def _draws(self, X, arm: int | None = None) -> np.ndarray:
        """(n, num_mcmc) posterior draws of tau(x) (``arm=None``) or of E[y | x, arm]."""
        Xa = self._check_X(X)
        if arm is None:  # tau never sees the propensity (stochtree's default "prognostic": mu
            # only), so any value gives the same draws; skipping the model saves ~7 ms a call
            e = np.full(Xa.shape[0], 0.5)
        else:
            e = self.propensity_model_.predict(Xa)
        W = np.full(Xa.shape[0], 0 if arm is None else arm, dtype=float)
        term = "cate" if arm is None else "y_hat"
        draws = self.model_.predict(Xa, W, e, terms=term, type="posterior")
        return np.asarray(draws, dtype=float).reshape(Xa.shape[0], -1)

    def predict(self, X) -> np.ndarray:
        """Posterior mean of the effect for each row, shape (n,)."""
        return self._draws(X).mean(axis=1)

    def predict_interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed (1 - alpha) posterior interval of each row's effect."""
        lo, hi = np.quantile(self._draws(X), [alpha / 2, 1 - alpha / 2], axis=1)
        return lo, hi

    def predict_with_interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, ...]:
        """``predict`` and ``predict_interval`` from one pass over the posterior draws."""
        draws = self._draws(X)
        lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=1)
        return draws.mean(axis=1), lo, hi

    def point_only_params(self) -> dict:
        """Settings of a copy that only needs posterior means (held-out priorities, losses and
        calibration): at most ``POINT_DRAWS`` retained draws after at most ``POINT_SWEEPS``
        warm-start sweeps. At n = 2,000 the mean of 100 draws differs from that of 200 by
        0.4-3% of the effect's variance (nMSE of nine target-cohorts 0.506 against 0.509), and
        5 sweeps instead of 10 move it less than rerunning the sampler with another seed does
        (docs/bcf.md#held-out-refits). Together the sampler takes about half the time."""
        return {
            "num_mcmc": min(self.num_mcmc, POINT_DRAWS),
            "num_gfr": min(self.num_gfr, POINT_SWEEPS),
        }

    @property
    def sent_slowly(self) -> bool:
        """A fitted BCF crosses a process boundary as stochtree's JSON: at n = 2,000 about 2 s
        to write and 4 s to read back, most of what its fit takes, so the pipeline fits it in
        its own process (``hte.pipeline.stages.fit_placement``)."""
        return True

    def __getstate__(self) -> dict:
        """The sampler as compressed JSON, made once per fit and kept: a run saves each BCF
        twice (its own file and the model average's), and the JSON costs ~2 s a time."""
        state = self.__dict__.copy()
        kept = state.pop("_saved_json", None)  # (sampler, its compressed JSON)
        if "model_" in state:
            if kept is None or kept[0] is not state["model_"]:  # none yet, or refitted since
                kept = (state["model_"], zlib.compress(state["model_"].to_json().encode(), level=6))
                self._saved_json = kept
            state["model_"] = kept[1]
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("model_"), bytes):
            from stochtree import BCFModel

            model = BCFModel()
            model.from_json(zlib.decompress(state["model_"]).decode())
            state["model_"] = model
        self.__dict__.update(state)


class BayesianCausalForest(PseudoOutcomeScoresMixin, _BCFBase):
    """BCF of the RMST / survival-probability effect at ``horizon`` on AIPCW pseudo-outcomes.

    target : "rmst" or "survival". horizon : h (time unit of ``time``).
    num_gfr, num_burnin, num_mcmc : warm-start sweeps, discarded and retained MCMC draws.
    mu_trees, tau_trees : trees of the prognostic and effect forests.
    variance_trees : trees of a forest for the noise variance (0: one variance for everybody).
    grid_size, event_learner, censoring_learner, n_folds, censoring_floor, propensity_clip :
        the survival nuisances, as in CausalSurvivalForest.
    """

    def __init__(
        self,
        target: str = "rmst",
        horizon: float | None = None,
        *,
        num_gfr: int = 10,
        num_burnin: int = 0,
        num_mcmc: int = 200,
        mu_trees: int = 200,
        tau_trees: int = 50,
        variance_trees: int = 0,
        grid_size: int | None = 25,
        event_learner="hazard_gbm",
        censoring_learner="hazard_gbm",
        n_folds: int = 5,
        censoring_floor: float = 0.05,
        propensity_clip: float = 0.01,
        n_jobs: int | None = 2,
        random_state: int | None = None,
    ):
        self.target = target
        self.horizon = horizon
        self.num_gfr = num_gfr
        self.num_burnin = num_burnin
        self.num_mcmc = num_mcmc
        self.mu_trees = mu_trees
        self.tau_trees = tau_trees
        self.variance_trees = variance_trees
        self.grid_size = grid_size
        self.event_learner = event_learner
        self.censoring_learner = censoring_learner
        self.n_folds = n_folds
        self.censoring_floor = censoring_floor
        self.propensity_clip = propensity_clip
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(
        self, X, *, time=None, event=None, treatment=None, nuisances: Nuisances | None = None
    ) -> BayesianCausalForest:
        """Cross-fit the survival nuisances (or read the analysis's shared ``nuisances``), build
        Y*, and sample the BCF posterior on it. X: an ``EffectData`` or covariates with
        ``time``, ``event`` and ``treatment``."""
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}; got {self.target!r}")
        if self.horizon is None:
            raise ValueError("horizon is required (e.g. horizon=24.0 for 24 months)")
        self._check_sampler()
        arr, _, W, out = pseudo_outcome_fit_inputs(self, X, time, event, treatment, nuisances)
        self._keep_pseudo_outcomes(out, W, shared=nuisances is not None)
        self._fit_sampler(arr, W, self.pseudo_outcome_, out["e"])
        return self

    def _estimate_labels(self) -> tuple[str, float | None, str]:
        return self.target, float(self.horizon), "bayesian_causal_forest"


class CRSBayesianCausalForest(_BCFBase):
    """BCF of the CRS risk difference (``outcome="crs"``, or ``"crs_g3"`` on rows with a grade).

    ``predict_risk`` gives each arm's posterior-mean risk (clipped to [0, 1] for display; the
    effect is their unclipped difference).
    """

    def __init__(
        self,
        outcome: str = "crs",
        *,
        num_gfr: int = 10,
        num_burnin: int = 0,
        num_mcmc: int = 200,
        mu_trees: int = 200,
        tau_trees: int = 50,
        variance_trees: int = 0,
        n_folds: int = 5,
        propensity_clip: float = 0.01,
        random_state: int | None = None,
    ) -> None:
        self.outcome = outcome
        self.num_gfr = num_gfr
        self.num_burnin = num_burnin
        self.num_mcmc = num_mcmc
        self.mu_trees = mu_trees
        self.tau_trees = tau_trees
        self.variance_trees = variance_trees
        self.n_folds = n_folds
        self.propensity_clip = propensity_clip
        self.random_state = random_state

    # the shared nuisances' propensity is this model's own cross-fit (Nuisances.serves)
    uses_default_nuisances = True

    @property
    def nuisance_folds(self) -> int:
        """The cross-fitting folds of the propensity (``n_folds``)."""
        return self.n_folds

    def fit(
        self, X, crs=None, treatment=None, *, crs_grade=None, nuisances: Nuisances | None = None
    ) -> CRSBayesianCausalForest:
        """Fit on covariates X, any-grade ``crs`` (0/1), ``treatment`` (1 = CAR-T) and, for
        ``outcome="crs_g3"``, ``crs_grade``; or an ``EffectData`` as X. ``nuisances``: the
        analysis's shared ``Nuisances``, whose propensity is read instead of cross-fitted."""
        self._check_sampler()
        row_ids = getattr(X, "row_ids", None)
        X, crs, treatment, crs_grade, weights = unpack_crs_fit(X, crs, treatment, crs_grade)
        if weights is not None:
            raise ValueError("CRSBayesianCausalForest does not take weights")
        if nuisances is not None:
            check_crs_nuisances(self, nuisances, treatment, row_ids)
        Xa, names, w, y, keep = crs_fit_inputs(X, crs, treatment, crs_grade, self.outcome)
        self.n_excluded_missing_grade_ = int((~keep).sum())
        self.n_features_in_ = Xa.shape[1]
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_fit_ = int(keep.sum())
        clip = self.propensity_clip
        if nuisances is not None:  # the design's clip (1e-3), then this model's
            e = np.clip(nuisances.propensity[keep], clip, 1.0 - clip)
        else:
            e = cross_fit_propensity(
                Xa, w, n_folds=self.n_folds, random_state=self.random_state, clip=clip
            )
        self.shared_nuisances_used_ = nuisances is not None
        self._fit_sampler(Xa, w, y.astype(float), e)
        return self

    def predict_risk(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Posterior-mean CRS risk under CAR-T and under teclistamab, each (n,)."""
        cart = np.clip(self._draws(X, arm=1).mean(axis=1), 0.0, 1.0)
        tec = np.clip(self._draws(X, arm=0).mean(axis=1), 0.0, 1.0)
        return cart, tec

    def _estimate_labels(self) -> tuple[str, float | None, str]:
        return self.outcome, None, "crs_bayesian_causal_forest"
