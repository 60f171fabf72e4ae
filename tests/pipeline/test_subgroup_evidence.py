"""subgroup_evidence on a small synthetic cohort: the exact JSON shape metrics.json stores, plain
JSON types, estimator choice, CRS weights, truth columns and input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from hte.config import load_config
from hte.estimators.nuisance import cross_fit_pseudo_outcomes
from hte.evaluation.rate import aipw_scores_binary, dr_scores_from_pseudo_outcomes
from hte.pipeline.stages import (
    crs_nuisances,
    design_diagnostics,
    fit_estimators,
    prepare_analysis,
    prepare_cohort,
)
from hte.pipeline.subgroups import rule_fit, subgroup_evidence

# the 40-tree CRS forest (kept small for speed) leaves a few patients without out-of-bag trees
pytestmark = pytest.mark.filterwarnings("ignore:Could not generate out-of-bag:UserWarning")

CONFIG = """\
name: subgroups
data: {source: synthetic, n: 600, seed: 3}
time_zero: [decision]
outcomes:
  os: {survival_horizon: 12, rmst_horizon: 24}
  crs: {any_grade: true, grade3: false}
estimators:
  - {name: cox, kind: cox_interaction}
  - {name: logit, kind: logistic_interaction, params: {penalty: 1.0}}
  - {name: crs_cf, kind: crs_causal_forest, params: {n_estimators: 40}}
explanation: {shap: false}
seeds: {global: 3}
"""

RULE_KEYS = {"estimator", "max_depth", "fidelity_r2", "leaves"}
RULE_LEAF_KEYS = {"rule", "n", "share", "mean_cate", "estimate", "lower", "upper"}
POLICY_KEYS = {"os_target", "crs_target", "units", "trees"}
TREE_KEYS = {"crs_weight", "share_cart", "leaves", "value"}
POLICY_LEAF_KEYS = {"rule", "n", "action", "net_benefit", "lower", "upper"}
INTERVAL_KEYS = {"estimate", "lower", "upper"}
PRESPECIFIED_KEYS = {
    "subgroup",
    "target",
    "n",
    "n_cart",
    "n_tec",
    "estimate",
    "lower",
    "upper",
    "complement_estimate",
    "difference",
    "difference_lower",
    "difference_upper",
    "difference_p_value",
    "mean_cate",
    "truth",
    "note",
}


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "subgroups.yaml"
    path.write_text(CONFIG)
    config = load_config(path)
    cohort, _ = prepare_cohort(config)
    data = prepare_analysis(cohort, config.time_zero[0])
    design_diagnostics(data, config.seed)
    fits = fit_estimators(data, config)
    t, d = data.survival_outcome()
    s = cross_fit_pseudo_outcomes(
        data.X.to_numpy(dtype=float),
        data.treatment,
        t,
        d,
        target="survival",
        horizon=12.0,
        grid_size=10,
        event_learner=HistGradientBoostingClassifier(max_iter=20, max_depth=2),
        censoring_learner="km",
        random_state=3,
        n_folds=3,
    )  # cheap nuisances: this test is about the evidence dict, not the quality of the scores
    surv = dr_scores_from_pseudo_outcomes(
        s["pseudo_outcome"], data.treatment, s["e"], s["mu1"], s["mu0"]
    )
    keep, y, w, e, mu1, mu0 = crs_nuisances(data, "crs", 3)
    scores = {
        "survival": (np.ones(len(data.cohort), dtype=bool), surv),
        "crs": (keep, aipw_scores_binary(y, w, e, mu1, mu0)),
    }
    return data, fits, scores


@pytest.fixture(scope="module")
def evidence(analysis):
    data, fits, scores = analysis
    return subgroup_evidence(data, fits, scores, seed=3)


def _is_num(x) -> bool:
    return x is None or (type(x) is float and math.isfinite(x))


def test_shape_is_exactly_the_metrics_contract(evidence, analysis):
    data, _, _ = analysis
    assert set(evidence) == {"rules", "policy", "prespecified"}
    assert set(evidence["rules"]) == {"survival", "rmst", "crs"}  # every fitted target
    for target, rules in evidence["rules"].items():
        assert set(rules) == RULE_KEYS and rules["max_depth"] == 2
        assert _is_num(rules["fidelity_r2"]) and isinstance(rules["estimator"], str)
        assert sum(leaf["n"] for leaf in rules["leaves"]) == len(data.cohort)
        for leaf in rules["leaves"]:
            assert set(leaf) == RULE_LEAF_KEYS and isinstance(leaf["rule"], str)
            assert type(leaf["n"]) is int and all(
                _is_num(leaf[k]) for k in RULE_LEAF_KEYS - {"rule", "n"}
            )
            if target == "rmst":  # no scores for rmst: what the data say is not estimated
                assert leaf["estimate"] is None
            else:
                assert leaf["lower"] <= leaf["estimate"] <= leaf["upper"]
    policy = evidence["policy"]
    assert set(policy) == POLICY_KEYS
    assert (policy["os_target"], policy["crs_target"]) == ("survival", "crs")
    assert [tree["crs_weight"] for tree in policy["trees"]] == [0.0, 0.1, 0.25, 0.5, 1.0]
    for tree in policy["trees"]:
        assert set(tree) == TREE_KEYS and set(tree["value"]) == {
            "policy",
            "all_cart",
            "all_tec",
            "policy_cross_validated",
        }
        assert all(set(v) == INTERVAL_KEYS for v in tree["value"].values())
        assert sum(leaf["n"] for leaf in tree["leaves"]) == len(data.cohort)
        treated = sum(leaf["n"] for leaf in tree["leaves"] if leaf["action"] == "cart")
        assert tree["share_cart"] == pytest.approx(treated / len(data.cohort))
        for leaf in tree["leaves"]:
            assert set(leaf) == POLICY_LEAF_KEYS and leaf["action"] in ("cart", "tec")
    rows = evidence["prespecified"]
    assert len(rows) == 2 * 6  # six definitions for each target with scores
    for row in rows:
        assert set(row) == PRESPECIFIED_KEYS and row["target"] in ("survival", "crs")
        assert all(type(row[k]) is int for k in ("n", "n_cart", "n_tec"))
        assert row["note"] is None or isinstance(row["note"], str)
        assert all(_is_num(v) for v in row["mean_cate"].values())
    text = json.dumps(evidence, allow_nan=False)  # plain JSON, no NaN
    assert json.loads(text) == evidence


def test_estimators_truth_and_policy_read_right(evidence, analysis):
    data, fits, _ = analysis
    # the CRS causal forest is preferred for CRS rules; no survival forest here, so the first fit
    assert evidence["rules"]["crs"]["estimator"] == "crs_cf"
    assert evidence["rules"]["survival"]["estimator"] == "cox"
    assert rule_fit(fits, "crs").estimator == "crs_cf"
    by = {(r["target"], r["subgroup"]): r for r in evidence["prespecified"]}
    row = by[("crs", "extramedullary")]
    assert set(row["mean_cate"]) == {"logit", "crs_cf"}
    member = data.cohort["extramedullary"].to_numpy(dtype=bool)
    assert row["truth"] == pytest.approx(data.cohort.loc[member, "true_cate_crs"].mean())
    surv = by[("survival", "age >= 65")]
    old = data.cohort["age"].to_numpy() >= 65
    assert surv["truth"] == pytest.approx(data.cohort.loc[old, "true_cate_surv12"].mean())
    assert surv["n"] == int(old.sum())
    # all-CAR-T value is the mean net score over patients with both scores: OS - w x CRS
    _, scores = analysis[0], analysis[2]
    rows = scores["crs"][0]
    os_mean, crs_mean = scores["survival"][1][rows].mean(), scores["crs"][1].mean()
    for tree in evidence["policy"]["trees"]:
        expected = os_mean - tree["crs_weight"] * crs_mean
        assert tree["value"]["all_cart"]["estimate"] == pytest.approx(expected)
        assert tree["value"]["all_tec"] == {"estimate": 0.0, "lower": 0.0, "upper": 0.0}
    assert "12-month survival probability" in evidence["policy"]["units"]


def test_without_crs_or_survival_scores(analysis):
    data, fits, scores = analysis
    only_os = subgroup_evidence(data, fits, {"survival": scores["survival"]}, seed=3)
    assert only_os["policy"]["crs_target"] is None
    assert [t["crs_weight"] for t in only_os["policy"]["trees"]] == [0.0]
    no_os = subgroup_evidence(data, fits, {"crs": scores["crs"]}, seed=3)
    assert no_os["policy"] is None
    assert {r["target"] for r in no_os["prespecified"]} == {"crs"}


def test_bad_input_names_the_parameter(analysis):
    data, fits, scores = analysis
    with pytest.raises(ValueError, match="crs_weights must be finite and >= 0"):
        subgroup_evidence(data, fits, scores, crs_weights=(0.0, -0.5))
    keep, values = scores["survival"]
    with pytest.raises(ValueError, match=r"scores\['survival'\]: keep mask"):
        subgroup_evidence(data, fits, {"survival": (keep[:-1], values)})
    with pytest.raises(ValueError, match=r"scores\['survival'\]: 600 kept rows"):
        subgroup_evidence(data, fits, {"survival": (keep, values[:-2])})
    bad = values.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match=r"scores\['survival'\] must be finite; rows \[0\]"):
        subgroup_evidence(data, fits, {"survival": (keep, bad)})
