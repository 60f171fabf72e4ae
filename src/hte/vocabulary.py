"""The project's one vocabulary of effect targets and estimator kinds (docs/registry.md).

Every module that needs to know which targets exist, in which order they are shown, how they are
scaled and labelled, which estimator kinds exist, what they estimate and which one is preferred
asks this module; nothing else spells those lists out. It sits at the bottom of the layers
(standard library only), so the data layer, the config and the faces can all read it; the class
of each kind is resolved in the estimators layer (``hte.estimators.registry``).

Adding an estimator kind: one ``EstimatorKind`` row below and the estimator's own module (the
contract test, tests/estimators/test_contract.py, picks the new row up by itself).
"""

from __future__ import annotations

from dataclasses import dataclass

OS = "os"
CRS = "crs"
OUTCOMES = (OS, CRS)


# --------------------------------------------------------------------------------------------------
# Effect targets


@dataclass(frozen=True)
class Target:
    """One effect target: a difference CAR-T minus teclistamab.

    ``outcome``: the outcome it is an effect on (``"os"`` or ``"crs"``); ``horizon_key``: the
    ``outcomes.os`` config key holding its horizon in months (None: no horizon); ``scale`` turns a
    raw value (a probability difference, or months) into ``unit`` (``short_unit`` on a chart
    axis); ``label`` names it in words (``{h}`` is the horizon); ``plain`` is the short name used
    in running text.
    """

    name: str
    outcome: str
    horizon_key: str | None
    unit: str
    short_unit: str
    scale: float
    label: str
    plain: str


# In display order: survival, RMST, CRS, grade >= 3 CRS.
TARGETS: tuple[Target, ...] = (
    Target(
        "survival",
        OS,
        "survival_horizon",
        "percentage points",
        "points",
        100.0,
        "overall survival at {h} months",
        "survival",
    ),
    Target(
        "rmst",
        OS,
        "rmst_horizon",
        "months",
        "months",
        1.0,
        "restricted mean survival to {h} months",
        "months of life gained",
    ),
    Target("crs", CRS, None, "percentage points", "points", 100.0, "any-grade CRS risk", "CRS"),
    Target(
        "crs_g3",
        CRS,
        None,
        "percentage points",
        "points",
        100.0,
        "grade ≥ 3 CRS risk",
        "severe (grade 3+) CRS",
    ),
)
TARGET_NAMES: tuple[str, ...] = tuple(t.name for t in TARGETS)
TARGET_ORDER: dict[str, int] = {t.name: i for i, t in enumerate(TARGETS)}
OS_TARGETS: tuple[str, ...] = tuple(t.name for t in TARGETS if t.outcome == OS)
CRS_TARGETS: tuple[str, ...] = tuple(t.name for t in TARGETS if t.outcome == CRS)
_TARGETS_BY_NAME = {t.name: t for t in TARGETS}


def target(name: str) -> Target:
    """The target called ``name``; ``KeyError`` naming the known targets otherwise."""
    try:
        return _TARGETS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown target {name!r}; targets: {', '.join(TARGET_NAMES)}") from None


def target_outcome(name: str) -> str:
    """``"os"`` or ``"crs"``: the outcome a target is an effect on."""
    return target(name).outcome


# --------------------------------------------------------------------------------------------------
# Estimator kinds


@dataclass(frozen=True)
class EstimatorKind:
    """One estimator kind a config may name.

    ``outcome``: what it estimates effects on (``"os"``: the survival and RMST targets, ``"crs"``:
    the CRS targets); ``rank``: preference within its outcome (0 first) where no held-out model
    choice decides which fit to show; ``path``: ``module:Class`` of its implementation under
    ``hte.estimators`` (imported by ``hte.estimators.registry``); ``label``: its name in words;
    ``quick``: constructor parameters for a small, fast fit (the estimator contract test,
    tests/estimators/test_contract.py, fits every kind with them), as (name, value) pairs.
    """

    name: str
    outcome: str
    rank: int
    path: str
    label: str
    quick: tuple[tuple[str, object], ...] = ()

    @property
    def quick_params(self) -> dict[str, object]:
        return dict(self.quick)

    @property
    def class_name(self) -> str:
        return self.path.rpartition(":")[2]


# In the order a config lists them by default (configs/default.yaml), OS first.
ESTIMATOR_KINDS: tuple[EstimatorKind, ...] = (
    EstimatorKind(
        "causal_survival_forest",
        OS,
        0,
        "hte.estimators.causal_survival_forest:CausalSurvivalForest",
        "causal survival forest",
        (
            ("n_estimators", 40),
            ("min_samples_leaf", 10),
            ("n_folds", 2),
            ("grid_size", 10),
            ("n_jobs", 1),
        ),
    ),
    EstimatorKind(
        "dr_learner",
        OS,
        1,
        "hte.estimators.dr_learner:SurvivalDRLearner",
        "DR-learner (AIPCW)",
        (("n_estimators", 40), ("n_folds", 2), ("cv", 2), ("grid_size", 10), ("n_jobs", 1)),
    ),
    EstimatorKind(
        "t_learner",
        OS,
        3,
        "hte.estimators.meta_learners:TLearnerSurvival",
        "T-learner",
        (("n_jobs", 1),),
    ),
    EstimatorKind(
        "s_learner",
        OS,
        4,
        "hte.estimators.meta_learners:SLearnerSurvival",
        "S-learner",
        (("n_jobs", 1),),
    ),
    EstimatorKind(
        "cox_interaction",
        OS,
        2,
        "hte.estimators.baselines:CoxInteractionModel",
        "Cox with interactions",
    ),
    EstimatorKind(
        "bcf",
        OS,
        5,
        "hte.estimators.bcf:BayesianCausalForest",
        "Bayesian causal forest (AIPCW)",
        (
            ("num_gfr", 5),
            ("num_mcmc", 20),
            ("mu_trees", 20),
            ("tau_trees", 10),
            ("n_folds", 2),
            ("grid_size", 10),
            ("n_jobs", 1),
        ),
    ),
    EstimatorKind(
        "crs_causal_forest",
        CRS,
        0,
        "hte.estimators.crs_forest:CRSCausalForest",
        "CRS causal forest",
        (("n_estimators", 40), ("cv", 2), ("n_jobs", 1)),
    ),
    EstimatorKind(
        "logistic_interaction",
        CRS,
        1,
        "hte.estimators.baselines:LogisticInteractionModel",
        "logistic with interactions",
        (("penalty", 0.1),),
    ),
    EstimatorKind(
        "crs_bcf",
        CRS,
        2,
        "hte.estimators.bcf:CRSBayesianCausalForest",
        "CRS Bayesian causal forest",
        (("num_gfr", 5), ("num_mcmc", 20), ("mu_trees", 20), ("tau_trees", 10), ("n_folds", 2)),
    ),
)
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in ESTIMATOR_KINDS)
_KINDS_BY_NAME = {k.name: k for k in ESTIMATOR_KINDS}


def estimator_kind(name: str) -> EstimatorKind:
    """The kind called ``name``; ``KeyError`` naming the known kinds otherwise."""
    try:
        return _KINDS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown estimator kind {name!r}; kinds: {', '.join(KIND_NAMES)}") from None


# Fits the run composes from other fits rather than fitting (not a config estimator kind)
COMPOSED_KIND_LABELS = {"model_average": "equal-weight average of learners"}


def kind_label(name: str | None) -> str | None:
    """The kind in words ("causal survival forest"), None for an unknown kind."""
    kind = _KINDS_BY_NAME.get(name or "")
    return COMPOSED_KIND_LABELS.get(name or "") if kind is None else kind.label


def preference(outcome_or_target: str) -> tuple[str, ...]:
    """Kind names of an outcome (``"os"``, ``"crs"``) or of a target's outcome, most preferred
    first: which fit to show when the run recorded no held-out model choice."""
    outcome = outcome_or_target
    if outcome not in OUTCOMES:
        outcome = target_outcome(outcome_or_target)
    kinds = sorted((k for k in ESTIMATOR_KINDS if k.outcome == outcome), key=lambda k: k.rank)
    return tuple(k.name for k in kinds)


def preference_rank(kind: str | None, outcome_or_target: str) -> int:
    """Position of ``kind`` in ``preference(outcome_or_target)`` (a sort key): kinds of the other
    outcome or unknown kinds come after every known one; an unknown target ranks all kinds 0."""
    if outcome_or_target not in OUTCOMES and outcome_or_target not in _TARGETS_BY_NAME:
        return 0
    order = preference(outcome_or_target)
    return order.index(kind) if kind in order else len(order)


def _check() -> None:
    """Names unique, ranks 0, 1, ... within each outcome: a wrong new row fails at import."""
    if len(set(KIND_NAMES)) != len(KIND_NAMES):
        raise ValueError(f"duplicate estimator kind in {KIND_NAMES}")
    for kind in ESTIMATOR_KINDS:
        if kind.outcome not in OUTCOMES or ":" not in kind.path:
            raise ValueError(f"{kind.name}: outcome must be one of {OUTCOMES}, path module:Class")
    for outcome in OUTCOMES:
        ranks = sorted(k.rank for k in ESTIMATOR_KINDS if k.outcome == outcome)
        if ranks != list(range(len(ranks))):
            raise ValueError(f"{outcome} estimator ranks must be 0..{len(ranks) - 1}; got {ranks}")


_check()
