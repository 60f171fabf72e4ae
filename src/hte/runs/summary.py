"""The run summary, metrics.json, as typed models with a schema version.

The pipeline builds a ``RunSummary`` and writes it with ``RunSummary.to_json`` (sorted keys,
floats rounded to 10 significant digits: the same config and seed give the same bytes); every
reader parses it back with ``RunSummary.from_json`` (through ``hte.runs.reader``), which refuses a
file of another schema with a message saying what to do.

The models type the frame every reader relies on: the experiment (name, seed, alpha), the data
fingerprint and rules, each analysis (counts, design, overlap and balance, baselines, model
choice, per estimator and target the summary of its per-patient effects) and the run-level
truth. The evidence sections of an analysis (heterogeneity tests, subgroups, robustness,
attributions, model choice detail) stay JSON objects whose shape the producing pipeline module
documents (``hte.pipeline.heterogeneity``, ``subgroups``, ``robustness``, ``explain``,
``model_choice``).

A key is written only when the pipeline set it (``exclude_unset``): an optional section that a
run did not produce is absent from metrics.json, not ``null``. Unknown keys are refused
(``extra="forbid"``), so a change of metrics.json is a change of these models and, when it
changes the meaning of a key readers use, of ``SCHEMA_VERSION``.

Schema versions:

- 0: metrics.json without ``schema_version`` (hte before the typed summary)
- 1: this layout; ``schema_version`` added, nothing else changed
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from hte.runs.folders import canonical_json

SCHEMA_VERSION = 1

JSON = dict[str, Any]  # a JSON object whose shape the producing pipeline module documents


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------------
# Per estimator and target


class AverageEffect(_Model):
    """The average of an estimator's effect with its interval (where the estimator offers one)."""

    estimate: float | None
    lower: float | None
    upper: float | None
    method: str


class EstimatorSummary(_Model):
    """One estimator fitted for one target: its per-patient effects summarized, or its error.

    ``heterogeneity`` (held-out RATE, TOC and BLP tests), ``truth`` (accuracy against the
    simulated truth) and ``attributions`` (SHAP) are set by later stages when they ran."""

    kind: str
    target: str
    horizon: float | None
    error: str | None = None
    fix: str | None = None
    fit: JSON | None = None  # e.g. Cox with interactions: the penalizer used, and why
    mean_effect: float | None = None
    sd_effect: float | None = None
    quantiles: dict[str, float | None] | None = None  # q10, q50, q90
    share_excluding_zero: float | None = None
    share_with_interval: float | None = None
    average: AverageEffect | None = None
    truth: JSON | None = None
    heterogeneity: JSON | None = None
    attributions: JSON | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


# --------------------------------------------------------------------------------------------------
# Per analysis (one time zero)


class Balance(_Model):
    """Standardized mean differences before and after stabilized IPTW."""

    max_abs_smd: float | None
    max_abs_smd_iptw: float | None
    smd: dict[str, dict[str, float | None]]  # covariate -> {unweighted, iptw}


class DesignSummary(_Model):
    features: list[str]
    missing: Any  # hte.design.design_matrix.DesignMatrix.describe_missing


AVERAGE_ONLY = "constant"  # model_choice[target]["chosen"] when no learner beat the average


def shows_average_only(choice: object) -> bool:
    """Whether one target's ``model_choice`` entry showed the average (constant) effect: no
    learner's held-out predictions ranked patients by benefit beyond chance."""
    return isinstance(choice, dict) and choice.get("chosen") == AVERAGE_ONLY


class AnalysisSummary(_Model):
    """One analysis time zero: who was analysed, the design, baselines and every fit."""

    mode: str
    description: str
    n_analysed: int
    n_by_arm: dict[str, int]
    n_excluded_by_reason: dict[str, int]
    design: DesignSummary
    estimators: dict[str, dict[str, EstimatorSummary]]  # estimator -> target -> summary
    # the design diagnostics and evidence: every run writes the first six; readers still say
    # "not in this run" rather than fail when one is absent
    propensity: JSON | None = None
    overlap: JSON | None = None
    balance: Balance | None = None
    baselines: dict[str, JSON] | None = None  # hazard_ratio_iptw, ate_<t>_iptw_km, ate_<crs>_aipw
    heterogeneity_scores: JSON | None = None
    model_choice: dict[str, JSON] | None = None  # target -> hte.pipeline.model_choice's choice
    subgroups: JSON | None = None  # hte.pipeline.subgroups (or {"error": ...})
    robustness: JSON | None = None  # hte.pipeline.robustness (or {"error": ...})

    @property
    def n_excluded(self) -> int:
        return sum(self.n_excluded_by_reason.values())

    def fits(self) -> list[tuple[str, str, EstimatorSummary]]:
        """(estimator, target, summary) of every fit, in metrics.json order."""
        return [
            (name, target, summary)
            for name, by_target in self.estimators.items()
            for target, summary in by_target.items()
        ]

    def section(self, name: str) -> JSON | None:
        """An optional evidence section (``subgroups``, ``robustness``), None when absent or
        when it failed (``section_error`` says why)."""
        value = getattr(self, name)
        return value if isinstance(value, dict) and "error" not in value else None

    def section_error(self, name: str) -> str | None:
        value = getattr(self, name)
        return str(value["error"]) if isinstance(value, dict) and "error" in value else None


# --------------------------------------------------------------------------------------------------
# The run


class Experiment(_Model):
    name: str
    config_sha256: str
    seed: int
    alpha: float


class DataFingerprint(_Model):
    """The cohort analysed (hte.runs.folders.fingerprint_frame / fingerprint_file)."""

    sha256: str
    hashed: str
    n: int
    columns: list[str]
    path: str | None = None  # a cohort file
    source: str | None = None  # an OMOP database (password hidden)


class DataRules(_Model):
    """What the data rules did (hte.pipeline.stages.data_rules)."""

    day_zero: JSON
    excluded_columns: dict[str, str] | None = None
    truth_columns_ignored: str | None = None


class ExplanationNote(_Model):
    shap: str
    subgroup_rules: str


class RunSummary(_Model):
    """metrics.json: deterministic content only (no timings, no paths of this run's folder)."""

    schema_version: int = SCHEMA_VERSION
    experiment: Experiment
    data: DataFingerprint
    data_rules: DataRules
    analyses: dict[str, AnalysisSummary]
    truth_metrics: bool
    failures: list[str]
    decision_truth: dict[str, float | str | None] | None = None
    time_zero_comparison: list[JSON] | None = None
    explanation: ExplanationNote | None = None
    cohort_extraction: JSON | None = None  # OMOP cohorts: the attrition of the extraction

    @property
    def alpha(self) -> float:
        return self.experiment.alpha

    @property
    def labels(self) -> list[str]:
        """The analyses' labels, in metrics.json's (sorted) order."""
        return list(self.analyses)

    def analysis(self, label: str | None = None) -> AnalysisSummary:
        """One analysis (default: the first)."""
        return self.analyses[self.labels[0] if label is None else label]

    def as_json_dict(self) -> dict[str, Any]:
        """The JSON object metrics.json holds (keys the pipeline set, floats as computed)."""
        return {"schema_version": self.schema_version, **self.model_dump(exclude_unset=True)}

    def to_json(self) -> str:
        """metrics.json's text: sorted keys, rounded floats, byte-stable for equal content."""
        return canonical_json(self.as_json_dict())

    @classmethod
    def from_json(cls, text: str) -> RunSummary:
        """Parse metrics.json text (``ValueError``/``pydantic.ValidationError`` when it is not a
        summary of this schema; ``hte.runs.reader`` turns these into plain messages)."""
        return cls.model_validate(json.loads(text))


def schema_of(metrics: Any) -> int | None:
    """The schema version a metrics.json object declares: 0 before versions were written, None
    when it is not a JSON object with an integer version."""
    if not isinstance(metrics, dict):
        return None
    version = metrics.get("schema_version", 0)
    return version if isinstance(version, int) and not isinstance(version, bool) else None
