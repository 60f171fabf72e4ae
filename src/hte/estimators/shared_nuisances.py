"""``Nuisances``: the cross-fitted nuisance models of one analysis, fitted once and shared.

One cross-fitting per analysis and seed gives, out of fold for every patient:

* the propensity e(x) (``hte.design.propensity.cross_fit_propensity``, clipped at 1e-3: the
  design's; each consumer clips further to its own ``propensity_clip``);
* the event survival S(t | x, w) at the observed arm and under both arms, and the censoring
  survival C(t | x, w), on **one time grid reaching the largest OS horizon** with every horizon
  on it (``shared_grid``): the curves of a shorter horizon are the first grid columns, so the
  survival-at-12-months and RMST-to-24-months targets read the same fitted models;
* per CRS outcome, the arm risks P(y = 1 | x, w = 1) and P(y = 1 | x, w = 0) over the rows that
  carry the outcome (``cross_fit_arm_risks``).

The causal survival forest and the DR-learner (both OS targets), the doubly robust scores of the
heterogeneity tests, learner selection, subgroups and policy, the AIPW averages and the
refutation originals all read these. ``Nuisances.pseudo_outcomes`` turns them into the AIPCW
pseudo-outcome of a target with exactly the maths of ``cross_fit_pseudo_outcomes``.

Held-out refits get their own ``Nuisances`` fitted on the training fold only (cross-fitted inside
it), once per fold, shared by every estimator refitted on that fold.

Stored in the run folder as ``nuisances/<analysis>.npz`` (plain arrays, no pickle; ``save`` /
``load``).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from hte.array_checks import check_covariates, check_survival_outcome, check_treatment
from hte.design.effect_data import EffectData, unpack_survival_fit
from hte.design.propensity import cross_fit_propensity
from hte.estimators.crs_outcomes import crs_binary_outcome
from hte.estimators.nuisance import (
    SurvivalNuisances,
    cross_fit_pseudo_outcomes,
    cross_fit_survival,
    dr_scores,
    make_grid,
    nuisance_params,
    pseudo_outcomes_from_nuisances,
)

DESIGN_CLIP = 1e-3  # the design's propensity clip (hte.design.propensity's default)
# The survival cross-fit's settings; an estimator reads shared nuisances only when its own
# settings are these values (``Nuisances.serves``).
SURVIVAL_SETTINGS = ("grid_size", "event_learner", "censoring_learner", "n_folds", "random_state")
DEFAULT_SURVIVAL = {
    "grid_size": 25,
    "event_learner": "hazard_gbm",
    "censoring_learner": "hazard_gbm",
    "n_folds": 5,
}


# --------------------------------------------------------------------------------------------
# CRS arm risks
# --------------------------------------------------------------------------------------------


def _outcome_model() -> HistGradientBoostingClassifier:
    """The CRS outcome learner of every AIPW estimate (depth 2, 100 rounds)."""
    return HistGradientBoostingClassifier(
        max_depth=2,
        max_iter=100,
        min_samples_leaf=30,
        l2_regularization=1.0,
        early_stopping=False,
    )


def cross_fit_arm_risks(
    X: np.ndarray, w: np.ndarray, y: np.ndarray, seed: int | None, *, n_folds: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold P(y = 1 | x, CAR-T) and P(y = 1 | x, teclistamab) from one boosted model on
    (x, arm) per fold (folds stratified by arm x outcome when every cell is big enough): the
    outcome nuisances of every AIPW estimate of a binary outcome in hte."""
    n = X.shape[0]
    mu1, mu0 = np.empty(n), np.empty(n)
    strata = 2 * w + y  # both arms and outcomes in every fold, when each cell is big enough
    if np.bincount(strata, minlength=4).min() < n_folds:
        strata = w
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    for train, test in folds.split(X, strata):
        with threadpool_limits(limits=1, user_api="openmp"):
            model = _outcome_model().fit(np.column_stack([X[train], w[train]]), y[train])
            ones = np.ones(test.size)
            mu1[test] = model.predict_proba(np.column_stack([X[test], ones]))[:, 1]
            mu0[test] = model.predict_proba(np.column_stack([X[test], 0 * ones]))[:, 1]
    return mu1, mu0


@dataclass(frozen=True, eq=False)
class ArmRisks:
    """Cross-fitted CRS arm risks of one outcome over the rows ``keep`` that carry it."""

    keep: np.ndarray  # (n,) bool over the analysis rows
    y: np.ndarray  # (keep.sum(),) 0/1
    mu1: np.ndarray
    mu0: np.ndarray


# --------------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------------


def shared_grid(time: np.ndarray, horizons, grid_size: int | None = 25) -> np.ndarray:
    """One grid reaching the largest horizon, on which every horizon is a grid point.

    Up to the shortest horizon it is that horizon's own ``make_grid``; between consecutive
    horizons h_{k-1} < h_k, the points of ``make_grid(time, h_k)`` above h_{k-1}. So the grid cut
    at any horizon is at least as fine there as that horizon's own grid (the shortest
    horizon's is exactly its own), and each target's curves end at its horizon.
    """
    hs = sorted({float(h) for h in horizons})
    if not hs:
        raise ValueError("shared_grid needs at least one horizon")
    parts = [make_grid(time, hs[0], grid_size)]
    for lower, upper in itertools.pairwise(hs):
        own = make_grid(time, upper, grid_size)
        parts.append(own[own > lower])
    return np.concatenate(parts)


def truncate(nuis: SurvivalNuisances, horizon: float) -> SurvivalNuisances:
    """The curves up to ``horizon``, which must be a grid point."""
    hits = np.flatnonzero(np.isclose(nuis.grid, float(horizon), rtol=0, atol=1e-9))
    if hits.size == 0:
        raise ValueError(
            f"horizon {horizon:g} is not on the shared grid (which reaches {nuis.grid[-1]:g})"
        )
    k = int(hits[0]) + 1
    return SurvivalNuisances(
        grid=nuis.grid[:k],
        surv=nuis.surv[:, :k],
        surv1=nuis.surv1[:, :k],
        surv0=nuis.surv0[:, :k],
        cens=nuis.cens[:, :k],
    )


# --------------------------------------------------------------------------------------------
# the object
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Nuisances:
    """Cross-fitted nuisances of one analysis (or one held-out training fold).

    ``row_ids``: the analysis rows they were fitted on (a held-out fold's training rows);
    ``treatment``: their arms (to check an estimator is handed the same patients);
    ``propensity``: out-of-fold e(x), clipped at 1e-3; ``survival``: curves on the shared grid
    (None without OS); ``horizons``: the OS horizons on the grid; ``crs``: arm risks per CRS
    outcome; ``settings``: the survival cross-fit's settings (``SURVIVAL_SETTINGS``);
    ``errors``: per OS horizon or CRS outcome, why it has no nuisances.
    """

    row_ids: np.ndarray
    treatment: np.ndarray
    propensity: np.ndarray
    survival: SurvivalNuisances | None
    horizons: tuple[float, ...]
    crs: dict[str, ArmRisks]
    settings: dict
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.row_ids.size)

    def serves(self, estimator) -> bool:
        """Whether ``estimator`` (a CSF / DR-learner) would have cross-fitted exactly these
        survival nuisances: same settings and seed, and its horizon on the grid; or (a CRS
        causal forest) exactly these propensity and arm risks of its outcome."""
        if hasattr(estimator, "uses_default_nuisances"):
            return self._serves_crs(estimator)
        if self.survival is None:
            return False
        try:
            own = {k: getattr(estimator, k) for k in SURVIVAL_SETTINGS}
            horizon = float(estimator.horizon)
        except (AttributeError, TypeError):
            return False
        if getattr(estimator, "propensity_learner", None) is not None:
            return False
        same = all(_same(own[k], self.settings[k]) for k in SURVIVAL_SETTINGS)
        return same and any(np.isclose(horizon, h) for h in self.horizons)

    def _serves_crs(self, estimator) -> bool:
        return (
            estimator.uses_default_nuisances
            and estimator.outcome in self.crs
            and estimator.nuisance_folds == self.settings["n_folds"]
            and _same(estimator.random_state, self.settings["random_state"])
        )

    def check_rows(self, treatment: np.ndarray, row_ids: np.ndarray | None = None) -> None:
        """The estimator is fitted on the patients these nuisances are for: same arms in the
        same order, and the same analysis rows when ``row_ids`` are known (an ``EffectData``):
        nuisances of all patients cannot be handed to a refit on a held-out fold."""
        w = np.asarray(treatment)
        same_rows = row_ids is None or np.array_equal(np.asarray(row_ids), self.row_ids)
        if (
            w.shape != self.treatment.shape
            or not np.array_equal(w, self.treatment)
            or not same_rows
        ):
            raise ValueError(
                f"nuisances were fitted on {self.n} patients that are not the {w.shape[0]} "
                "given to fit (different rows or order): fit them on the same EffectData"
            )

    def survival_for(self, horizon: float) -> SurvivalNuisances:
        """The survival curves of one horizon (the shared grid cut at it)."""
        key = f"os@{float(horizon):g}"
        if key in self.errors:
            raise ValueError(f"no survival nuisances for horizon {horizon:g}: {self.errors[key]}")
        if self.survival is None:
            raise ValueError("these nuisances have no survival outcome")
        return truncate(self.survival, horizon)

    def pseudo_outcomes(
        self,
        time: np.ndarray,
        event: np.ndarray,
        *,
        target: str,
        horizon: float,
        censoring_floor: float = 0.05,
        propensity_clip: float = 0.01,
    ) -> dict:
        """The dict of ``cross_fit_pseudo_outcomes`` for one target, from these nuisances."""
        e = np.clip(self.propensity, propensity_clip, 1.0 - propensity_clip)
        return pseudo_outcomes_from_nuisances(
            time,
            event,
            e,
            self.survival_for(horizon),
            target=target,
            censoring_floor=censoring_floor,
        )

    def arm_risks(self, outcome: str) -> ArmRisks:
        if outcome in self.errors:
            raise ValueError(f"no CRS nuisances for {outcome}: {self.errors[outcome]}")
        if outcome not in self.crs:
            raise ValueError(f"no CRS nuisances for {outcome}: it was not requested")
        return self.crs[outcome]

    # --- run folder ------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Plain arrays in an .npz and the settings as JSON inside it (no pickle)."""
        arrays = {
            "row_ids": self.row_ids,
            "treatment": self.treatment,
            "propensity": self.propensity,
        }
        if self.survival is not None:
            for name in ("grid", "surv", "surv1", "surv0", "cens"):
                arrays[f"survival_{name}"] = getattr(self.survival, name)
        for outcome, risks in self.crs.items():
            for name in ("keep", "y", "mu1", "mu0"):
                arrays[f"crs_{outcome}_{name}"] = getattr(risks, name)
        meta = {
            "horizons": list(self.horizons),
            "crs": sorted(self.crs),
            "settings": _jsonable(self.settings),
            "errors": self.errors,
        }
        arrays["meta_json"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: Path) -> Nuisances:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta_json"]).decode())
            survival = None
            if "survival_grid" in z:
                survival = SurvivalNuisances(
                    **{n: z[f"survival_{n}"] for n in ("grid", "surv", "surv1", "surv0", "cens")}
                )
            crs = {
                o: ArmRisks(*(z[f"crs_{o}_{n}"] for n in ("keep", "y", "mu1", "mu0")))
                for o in meta["crs"]
            }
            return cls(
                z["row_ids"],
                z["treatment"],
                z["propensity"],
                survival,
                tuple(meta["horizons"]),
                crs,
                meta["settings"],
                meta["errors"],
            )


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return a is b  # a learner instance: shared only if it is the very same object


def _jsonable(settings: dict) -> dict:
    return {
        k: v if isinstance(v, str | int | float | None) else repr(v) for k, v in settings.items()
    }


# --------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------


def fit_nuisances(
    data: EffectData,
    *,
    horizons=(),
    crs_outcomes=(),
    random_state: int | None = None,
    grid_size: int | None = DEFAULT_SURVIVAL["grid_size"],
    event_learner=DEFAULT_SURVIVAL["event_learner"],
    censoring_learner=DEFAULT_SURVIVAL["censoring_learner"],
    n_folds: int = DEFAULT_SURVIVAL["n_folds"],
    n_jobs: int | None = 2,
) -> Nuisances:
    """Cross-fit every nuisance of ``data`` once: propensity, survival to the largest of
    ``horizons`` (when ``data`` has OS and a horizon is given) and CRS arm risks per outcome.

    A horizon beyond follow-up or a CRS outcome the data cannot give is recorded in ``errors``
    (its consumers then raise that error); the others are fitted.
    """
    W = data.treatment
    e = cross_fit_propensity(
        data.X, W, n_folds=n_folds, random_state=random_state, clip=DESIGN_CLIP
    )
    errors: dict[str, str] = {}
    ok: list[float] = []
    survival = None
    if data.has_survival:
        t, d = data.survival()
        for h in sorted({float(h) for h in horizons}):
            try:
                check_survival_outcome(t, d, data.n, h)
                ok.append(h)
            except ValueError as exc:
                errors[f"os@{h:g}"] = str(exc)
        if ok:
            grid = shared_grid(t, ok, grid_size)
            with threadpool_limits(limits=1):  # many small OpenMP fits: one thread each
                survival = cross_fit_survival(
                    data.X,
                    W,
                    t,
                    d,
                    grid,
                    event_learner=event_learner,
                    censoring_learner=censoring_learner,
                    n_folds=n_folds,
                    random_state=random_state,
                    n_jobs=n_jobs,
                )
    crs: dict[str, ArmRisks] = {}
    for outcome in crs_outcomes:
        try:
            y, keep = crs_binary_outcome(data.crs, data.crs_grade, outcome, data.n)
            mu1, mu0 = cross_fit_arm_risks(
                data.X[keep], W[keep], y[keep], random_state, n_folds=n_folds
            )
            crs[outcome] = ArmRisks(keep, y[keep], mu1, mu0)
        except ValueError as exc:
            errors[outcome] = str(exc)
    settings = {
        "grid_size": grid_size,
        "event_learner": event_learner,
        "censoring_learner": censoring_learner,
        "n_folds": n_folds,
        "random_state": random_state,
    }
    return Nuisances(data.row_ids.copy(), W.copy(), e, survival, tuple(ok), crs, settings, errors)


def check_crs_nuisances(estimator, nuisances: Nuisances, treatment, row_ids) -> None:
    """An error unless ``nuisances`` are the ones the CRS ``estimator`` would cross-fit itself,
    for the same patients."""
    if not nuisances.serves(estimator):
        raise ValueError(
            f"these nuisances do not serve {type(estimator).__name__}(outcome="
            f"{estimator.outcome!r}): they need its default learners, "
            f"{nuisances.settings['n_folds']} folds and random_state="
            f"{nuisances.settings['random_state']}, and the outcome among {sorted(nuisances.crs)}"
        )
    nuisances.check_rows(np.asarray(treatment), row_ids)


def pseudo_outcome_fit_inputs(estimator, X, time, event, treatment, nuisances: Nuisances | None):
    """Checked inputs and the AIPCW pseudo-outcomes of a learner fitted on Y* (the DR-learner,
    the Bayesian causal forest): ``(arr, names, W, out)`` with ``out`` as from
    ``cross_fit_pseudo_outcomes``. ``X`` is an ``EffectData`` or covariates with the arrays;
    ``nuisances``, when given, must be the ones the learner would cross-fit itself (same
    settings, seed and patients), else an error. Sets ``feature_names_in_``/``n_features_in_``."""
    name = type(estimator).__name__
    row_ids = X.row_ids if isinstance(X, EffectData) else None
    X, time, event, treatment, weights = unpack_survival_fit(X, time, event, treatment)
    if weights is not None:
        raise ValueError(f"{name} does not take weights")
    arr, names = check_covariates(X)
    W = check_treatment(treatment, arr.shape[0])
    t, d = check_survival_outcome(time, event, arr.shape[0], float(estimator.horizon))
    estimator.feature_names_in_ = np.asarray(names, dtype=object)
    estimator.n_features_in_ = arr.shape[1]
    if nuisances is None:
        return arr, names, W, cross_fit_pseudo_outcomes(arr, W, t, d, **nuisance_params(estimator))
    return arr, names, W, shared_pseudo_outcomes(estimator, nuisances, t, d, W, row_ids)


def shared_pseudo_outcomes(estimator, nuisances: Nuisances, t, d, W, row_ids) -> dict:
    """The AIPCW pseudo-outcomes of ``estimator``'s target and horizon from shared nuisances, as
    from ``cross_fit_pseudo_outcomes``; an error unless the nuisances are the ones the estimator
    would cross-fit itself (same settings, seed, horizons and patients)."""
    if not nuisances.serves(estimator):
        raise ValueError(
            "these nuisances were cross-fitted with other settings, seed or horizons than "
            f"{type(estimator).__name__}'s ({nuisances.settings}); fit without them"
        )
    nuisances.check_rows(W, row_ids)
    return nuisances.pseudo_outcomes(
        t,
        d,
        target=estimator.target,
        horizon=float(estimator.horizon),
        censoring_floor=estimator.censoring_floor,
        propensity_clip=estimator.propensity_clip,
    )


class PseudoOutcomeScoresMixin:
    """What a learner fitted on Y* keeps of its nuisances, and ``get_scores`` from them."""

    def _keep_pseudo_outcomes(self, out: dict, W: np.ndarray, shared: bool) -> None:
        self.shared_nuisances_used_ = shared
        self.pseudo_outcome_ = out["pseudo_outcome"]
        self.grid_ = out["grid"]
        self.nuisance_diagnostics_ = out["diagnostics"]
        self.training_scores_ = {k: out[k] for k in ("e", "mu1", "mu0", "pseudo_outcome")}
        self.training_scores_["W"] = W

    def get_scores(self) -> np.ndarray:
        """The doubly robust scores of the training patients from the survival nuisances this
        learner built Y* with (as grf's get_scores; a learner's own second-stage nuisances on
        Y* are not in them)."""
        if not hasattr(self, "training_scores_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")
        return dr_scores(self.training_scores_)
