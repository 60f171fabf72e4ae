"""The app's small views of the run's model choice: the diagnostics columns and the what-if's
"patients like this" lines (pure functions of metrics / effects; no run needed)."""

from __future__ import annotations

from hte.app.cohort import _choice_columns
from hte.app.run_view import EstimatorTarget
from hte.app.whatif import effect_cards
from hte.runs import AnalysisSummary


def _analysis(estimators: dict, model_choice: dict) -> AnalysisSummary:
    """An analysis of a run summary with these fits and model choice (the rest minimal)."""
    fits = {
        name: {t: {"kind": kind, "target": t, "horizon": None} for t in targets}
        for name, (kind, targets) in estimators.items()
    }
    return AnalysisSummary.model_validate(
        {
            "mode": "decision",
            "description": "",
            "n_analysed": 0,
            "n_by_arm": {},
            "n_excluded_by_reason": {},
            "design": {"features": [], "missing": {}},
            "estimators": fits,
            "model_choice": model_choice,
        }
    )


class _View:
    def __init__(self, choice: dict):
        self._choice = choice

    def analysis(self, label=None):
        return _analysis({}, self._choice)


CHOICE = {
    "survival": {
        "chosen": "constant",
        "losses": [{"candidate": "cox", "diff_vs_constant": 0.002, "diff_vs_constant_se": 0.001}],
        "benefit_calibration": {
            "cox": {"slope": 0.4, "e_for_benefit": 0.03, "c_for_benefit": 0.51}
        },
    }
}


def test_diagnostics_columns_name_the_shown_model_and_calibration():
    cols = _choice_columns(_View(CHOICE), EstimatorTarget("cox", "survival", "cox_interaction"))
    assert cols["shown"] == "no (average effect shown)"
    assert cols["held-out DR loss gain over constant (SE)"].startswith("-2")
    assert cols["calibration for benefit: slope"].startswith("0.4")
    assert _choice_columns(_View({}), EstimatorTarget("cox", "crs", "x")) == {}


def test_whatif_lists_the_group_estimate_of_patients_like_this():
    effects = {
        "alpha": 0.05,
        "survival_horizon": 12.0,
        "survival_difference": {
            "value": 0.1,
            "lower": 0.02,
            "upper": 0.18,
            "source": "average effect (DR)",
        },
        "patients_like_this": {
            "survival": {
                "group": 1,
                "n_groups": 1,
                "n": 2000,
                "estimate": 0.1,
                "lower": 0.02,
                "upper": 0.18,
            }
        },
    }
    html = effect_cards(effects)
    assert "Patients like this" in html and "+10.0 points" in html and "all patients" in html
    effects["patients_like_this"]["survival"].update(group=3, n_groups=5, n=400)
    assert "group 3 of 5, n = 400" in effect_cards(effects)


def test_the_cohort_views_put_the_chosen_estimator_first():
    from hte.app.run_view import RunView

    class _Run(RunView):
        def __init__(self, choice):
            self._a = _analysis(
                {
                    "csf": ("causal_survival_forest", ["survival"]),
                    "cox": ("cox_interaction", ["survival"]),
                },
                {"survival": {"chosen": choice}},
            )

        def analysis(self, label=None):
            return self._a

    assert _Run("cox").primary("survival").estimator == "cox"
    assert _Run("constant").primary("survival").estimator == "csf"  # preference order


def test_cohort_headline_says_when_the_spread_is_not_supported():
    # a target whose held-out check chose the constant: the headline gives the average effect and
    # says the histogram's spread is not a finding; a chosen learner keeps its plain summary
    import numpy as np

    from hte.app.cohort import _headline

    class View(_View):
        name, labels, level = "default", ["decision"], "95%"

        def analysis(self, label=None):
            a = _analysis({}, self._choice)
            return a.model_copy(update={"n_analysed": 2000})

    choice = {
        "crs": {
            "chosen": "constant",
            "patients_like_this": {
                "groups": [{"estimate": 0.11, "lower": 0.05, "upper": 0.17, "n": 2000}]
            },
        },
        "survival": {"chosen": "cox"},
    }
    os_fit = EstimatorTarget("cox", "survival", "cox_interaction")
    crs_fit = EstimatorTarget("crs_causal_forest", "crs", "crs_causal_forest")
    text = _headline(View(choice), os_fit, crs_fit, np.array([0.1, -0.1]), np.array([0.0, 0.3]))
    assert "OS (cox): mean 0" in text and "50% of patients" in text
    assert "CRS: this cohort does not support individual differences" in text
    assert "0.11 (0.05 to 0.17) (95% CI)" in text and "not a finding" in text
    assert "mean risk difference" not in text
