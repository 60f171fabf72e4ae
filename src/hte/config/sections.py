"""The analysis sections of a config: time zero, outcomes and horizons, evaluation, explanation,
seeds and output."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from hte import vocabulary
from hte.config.base import DEFAULT_SEED, Name, Seed, StrictModel, require_unique
from hte.data.columns import DAYS_PER_MONTH
from hte.data.day_zero import DAY_ZERO_DAYS


class TimeZeroAnalysis(StrictModel):
    """One analysis time zero (hte.design.time_zero); ``label`` names it in the run folder."""

    mode: Literal["decision", "infusion", "landmark"] = "decision"
    landmark_days: float | None = Field(None, gt=0, le=3650)
    label: Name | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        """``- decision`` is short for ``- mode: decision``."""
        return {"mode": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _landmark_days_with_landmark(self) -> TimeZeroAnalysis:
        if self.mode == "landmark" and self.landmark_days is None:
            raise ValueError("mode landmark needs landmark_days (days from the decision, > 0)")
        if self.mode != "landmark" and self.landmark_days is not None:
            raise ValueError(f"landmark_days is only used with mode landmark, not {self.mode}")
        if self.label is None:
            days = self.landmark_days
            self.label = self.mode if days is None else f"landmark_{days:g}d"
        return self

    @property
    def landmark_months(self) -> float:
        """Follow-up lost to the landmark (0 for decision and infusion), in months."""
        return 0.0 if self.landmark_days is None else self.landmark_days / DAYS_PER_MONTH


class OSOutcome(StrictModel):
    """Overall survival: survival difference at one horizon and RMST difference up to another
    (months); a horizon set to null is not estimated."""

    enabled: bool = True
    survival_horizon: float | None = Field(12.0, gt=0, le=1200)
    rmst_horizon: float | None = Field(24.0, gt=0, le=1200)
    day_zero_days: float = Field(
        DAY_ZERO_DAYS, gt=0, le=7, description="follow-up of 0 counts as this many days"
    )

    @model_validator(mode="after")
    def _some_horizon(self) -> OSOutcome:
        if self.enabled and self.survival_horizon is None and self.rmst_horizon is None:
            raise ValueError("OS is enabled but both horizons are null; set one, or enabled: false")
        return self

    def targets(self) -> list[tuple[str, float]]:
        """(target, horizon) pairs the OS estimators fit: ("survival", 12.0), ("rmst", 24.0)."""
        if not self.enabled:
            return []
        pairs = [
            (t, getattr(self, vocabulary.target(t).horizon_key)) for t in vocabulary.OS_TARGETS
        ]
        return [(target, float(h)) for target, h in pairs if h is not None]


class CRSOutcome(StrictModel):
    """CRS risk difference: any grade, and grade >= 3 (``auto``: when the cohort has crs_grade)."""

    enabled: bool = True
    any_grade: bool = True
    grade3: Literal[True, False, "auto"] = "auto"

    @model_validator(mode="after")
    def _some_outcome(self) -> CRSOutcome:
        if self.enabled and not self.any_grade and self.grade3 is False:
            raise ValueError("CRS is enabled but any_grade and grade3 are both off")
        return self

    def outcomes(self, has_grade: bool) -> list[str]:
        """CRS outcome names the CRS estimators fit ("crs", "crs_g3"), given the cohort."""
        if not self.enabled:
            return []
        out = ["crs"] if self.any_grade else []
        if self.grade3 is True or (self.grade3 == "auto" and has_grade):
            out.append("crs_g3")
        return out


class Outcomes(StrictModel):
    os: OSOutcome = Field(default_factory=OSOutcome)
    crs: CRSOutcome = Field(default_factory=CRSOutcome)

    @model_validator(mode="after")
    def _one_enabled(self) -> Outcomes:
        if not (self.os.enabled or self.crs.enabled):
            raise ValueError("both outcomes are disabled; enable os or crs")
        return self


class ModelAverageSpec(StrictModel):
    """An equal-weight average of configured learners of one outcome, shown and scored like a
    learner (``hte.estimators.model_average``): ``members`` are estimator names of this config,
    ``interval_member`` the member whose interval, widened where the members disagree, is the
    average's (null: no interval)."""

    name: Name = "model_average"
    members: list[Name] = Field(min_length=2)
    interval_member: Name | None = None
    # shown in place of the learner the model-choice gate passes, unless its held-out loss is
    # worse by more than 2 SE of the paired difference (hte.evaluation.selection)
    preferred: bool = True

    @model_validator(mode="after")
    def _interval_member_is_a_member(self) -> ModelAverageSpec:
        require_unique(self.members, "model_average member", "name each member once")
        if self.interval_member is not None and self.interval_member not in self.members:
            raise ValueError(
                f"interval_member {self.interval_member!r} is not one of the members "
                f"({', '.join(self.members)})"
            )
        return self


class HeldoutFolds(StrictModel):
    """Folds of the held-out refits per outcome (``evaluation.heldout_folds``; one integer sets
    both). Each patient is predicted by a refit on the other folds. OS: 5, so each learner is
    judged by refits on 80% of the patients, which gives the model choice's gate the power to see
    the model average's accuracy at n = 2,000; CRS: 2, where 5 folds made the shown model no
    better on the synthetic cohort (docs/model_average.md#how-often-the-run-shows-it)."""

    os: int = Field(5, ge=2, le=10)
    crs: int = Field(2, ge=2, le=10)

    @model_validator(mode="before")
    @classmethod
    def _one_number_for_both(cls, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return {"os": value, "crs": value}
        return value

    def of(self, outcome: str) -> int:
        """The folds of one outcome ("os" or "crs")."""
        return self.os if outcome == "os" else self.crs


class Evaluation(StrictModel):
    """Interval level, truth metrics (``auto``: on when the cohort carries true_* columns), an
    optional propensity-matched comparison (1:1, caliper in SDs of the logit propensity), as
    published real-world studies report it, and the robustness checks (refutations, E-values)."""

    alpha: float = Field(0.05, gt=0, lt=0.5)
    truth_metrics: Literal[True, False, "auto"] = "auto"
    matching: bool = False
    matching_caliper: float = Field(0.2, gt=0, le=10)
    robustness: bool = True  # refutations of the average effects and E-values
    # which model a target shows (hte.evaluation.selection): ranked by this held-out loss ...
    model_choice_loss: Literal["dr", "r"] = "dr"
    # ... and shown if it passes this gate (else the average effect): "slope" = its held-out
    # calibration slope exceeds 0 (one-sided, Bonferroni over the learners; the default: fewer
    # false showings and lower error on the synthetic cohort, experiments/benchmarks/
    # learner_selection.md), "loss" = it beats the constant by 2 SE of the paired loss difference
    model_choice_gate: Literal["loss", "slope"] = "slope"
    # folds of the held-out refits behind the model choice and the RATE / BLP tests, per outcome
    # (more folds: refits closer to the full fit, a more powerful gate, and more refitting)
    heldout_folds: HeldoutFolds = HeldoutFolds()
    # an equal-weight average of fitted learners, a candidate beside them (null: none)
    model_average: ModelAverageSpec | None = None


class Explanation(StrictModel):
    """SHAP attributions of the CATE and shallow subgroup-rule trees."""

    shap: bool = True
    n_patients_shap: int = Field(200, ge=1, le=100_000)
    subgroup_rules: bool = True
    max_rule_depth: int = Field(2, ge=1, le=6)


class Seeds(StrictModel):
    """One global seed for every random draw (synthetic cohort, folds, forests)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    global_seed: Seed = Field(DEFAULT_SEED, alias="global")


SYSTEM_DIRS = ("/proc", "/sys", "/dev")


class Output(StrictModel):
    """Where run folders go (``<root>/<name>/...``); no ".." parts, not under /proc, /sys, /dev
    (``check_output_root`` checks at run time that it is a folder this user can write)."""

    root: Path = Path("experiments")

    @field_validator("root")
    @classmethod
    def _plain_root(cls, value: Path) -> Path:
        if ".." in value.parts:
            raise ValueError(f"{str(value)!r} climbs out with '..'; write the folder plainly")
        text = value.as_posix()
        for system in SYSTEM_DIRS:
            if text == system or text.startswith(system + "/"):
                raise ValueError(f"{text!r} is under {system}; choose a normal folder")
        return value
