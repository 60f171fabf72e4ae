"""Subgroup rules, policy trees and prespecified subgroups against known effects.

DR scores in these simulations are AIPW scores of a binary outcome computed with the *true*
propensity and outcome means, so they are exactly unbiased per patient and every interval has its
nominal coverage for the group's average true effect (up to normal approximation): the tests check
the subgroup code, not nuisance models.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from hte.evaluation.rate import aipw_scores_binary
from hte.explain.policy_tree import policy_tree, policy_value_cv
from hte.explain.prespecified import prespecified_subgroups
from hte.explain.subgroup_base import Condition, assign_leaves
from hte.explain.subgroup_rules import cate_rules


def _oracle_scores(rng, tau, mu0, e):
    """Binary outcomes with P(Y=1 | x, w) = mu0 + w tau and their oracle AIPW scores."""
    n = tau.size
    w = (rng.uniform(size=n) < e).astype(int)
    mu1 = mu0 + tau
    y = (rng.uniform(size=n) < np.where(w == 1, mu1, mu0)).astype(int)
    return w, aipw_scores_binary(y, w, e, mu1, mu0)


def _step_world(seed: int, n: int = 2000):
    """Effect 0.3 where x1 > 0.5, else 0; x2, x3 are noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.uniform(size=(n, 3)), columns=["x1", "x2", "x3"])
    tau = np.where(X["x1"] > 0.5, 0.3, 0.0)
    _, scores = _oracle_scores(rng, tau, np.full(n, 0.35), np.full(n, 0.5))
    cate = tau + rng.normal(0, 0.03, n)  # an estimator's CATE: the truth plus a little noise
    return X, tau, cate, scores


# --------------------------------------------------------------------------------------------------
# CATE rules


def test_rule_tree_splits_on_the_effect_modifier_near_its_threshold():
    X, _, cate, scores = _step_world(seed=1)
    rules = cate_rules(X, cate, scores, max_depth=1, random_state=0)
    assert len(rules.leaves) == 2
    top, bottom = rules.leaves  # sorted by mean CATE, largest first
    (cond,) = top.conditions
    assert cond.feature == "x1" and cond.above
    # the CATE noise (sd 0.03) is 10x smaller than the step: the split lands within 0.02 of it
    assert abs(cond.threshold - 0.5) < 0.02
    assert re.fullmatch(r"x1 >= 0\.5\d*", top.rule) and re.fullmatch(r"x1 < 0\.5\d*", bottom.rule)
    assert top.n + bottom.n == len(X) and math.isclose(top.share + bottom.share, 1.0)
    # steps of 0.3 vs a CATE noise variance of 0.03^2: the one split explains >= 95% of it
    assert rules.fidelity_r2 > 0.95
    assert top.mean_cate == pytest.approx(0.3, abs=0.01)


@pytest.mark.slow
def test_rule_leaf_intervals_cover_the_true_leaf_effects():
    covered, total = 0, 0
    for seed in range(25):
        X, tau, cate, scores = _step_world(seed, n=1500)
        rules = cate_rules(X, cate, scores, max_depth=2, random_state=0)
        index = rules.leaf_index(X)
        for k, leaf in enumerate(rules.leaves):
            truth = tau[index == k].mean()
            covered += leaf.lower <= truth <= leaf.upper
            total += 1
            assert leaf.n == int((index == k).sum())
    # nominal 95%; ~100 intervals give a binomial sd of ~0.022, so 0.88 is > 3 sd below nominal.
    # (Leaves are chosen on the CATE, not on the scores, so the intervals are not selected ones.)
    assert covered / total >= 0.88


def test_rule_text_is_clinical():
    rng = np.random.default_rng(3)
    n = 1200
    X = pd.DataFrame(
        {
            "age": np.round(rng.uniform(45, 85, n), 1),
            "ecog": rng.integers(0, 4, n).astype(float),
            "extramedullary": rng.integers(0, 2, n).astype(float),
            "sex_male": rng.integers(0, 2, n).astype(float),
            "crp_missing": rng.integers(0, 2, n).astype(float),
        }
    )
    cate = 0.3 * X["extramedullary"] + 0.2 * (X["age"] >= 71.5)
    rules = cate_rules(X, cate.to_numpy(), max_depth=2, random_state=0)
    texts = {leaf.rule for leaf in rules.leaves}
    assert texts == {
        "extramedullary = yes and age >= 71.5",
        "extramedullary = yes and age < 71.5",
        "extramedullary = no and age >= 71.5",
        "extramedullary = no and age < 71.5",
    }
    assert np.isnan(rules.leaves[0].estimate)  # no scores given: no data-based estimate
    # integers, one-hot categories (with and without their levels) and missingness indicators
    from hte.explain.subgroup_base import RuleDescriber

    plain, named = RuleDescriber(X, None), RuleDescriber(X, {"sex": ("female", "male")})
    assert plain.rule([Condition("ecog", 1.5, True)]) == "ECOG >= 2"
    assert plain.rule([Condition("ecog", 1.5, False)]) == "ECOG <= 1"
    assert plain.rule([Condition("sex_male", 0.5, False)]) == "sex != male"
    assert named.rule([Condition("sex_male", 0.5, False)]) == "sex = female"
    assert named.rule([Condition("sex_male", 0.5, True)]) == "sex = male"
    assert plain.rule([Condition("crp_missing", 0.5, True)]) == "CRP missing"
    ages = RuleDescriber(pd.DataFrame({"age": [59.9, 60.0, 75.0, 75.1, 80.0]}), None)
    both = [Condition("age", 59.95, True), Condition("age", 75.05, False)]
    assert ages.rule(both) == "60 <= age < 75.1"  # 75.0 stays in: the bound is exact on the data
    assert ages.rule([Condition("age", 77.55, True)]) == "age >= 80"
    assert plain.rule([]) == "all patients"


def test_rules_reject_bad_input_naming_the_parameter():
    X, _, cate, scores = _step_world(seed=0, n=200)
    with pytest.raises(ValueError, match="cate must have one value per row"):
        cate_rules(X, cate[:-1])
    bad = scores.copy()
    bad[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"scores must be finite; rows \[3, 7\]"):
        cate_rules(X, cate, bad)
    Xn = X.copy()
    Xn.loc[4, "x2"] = np.nan
    with pytest.raises(ValueError, match=r"columns \['x2'\].*rows \[4\]"):
        cate_rules(Xn, cate)
    with pytest.raises(ValueError, match="max_depth"):
        cate_rules(X, cate, max_depth=0)
    with pytest.raises(ValueError, match="min_leaf_fraction"):
        cate_rules(X, cate, min_leaf_fraction=0.7)
    with pytest.raises(TypeError, match="X must be a pandas DataFrame"):
        cate_rules(X.to_numpy(), cate)


# --------------------------------------------------------------------------------------------------
# policy tree


def _policy_world(seed: int, n: int = 6000):
    """OS gain 0.3 where x1 > 0.5 else -0.1; CRS harm 0.45 where x2 > 0.5 else 0.05."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.uniform(size=(n, 4)), columns=["x1", "x2", "x3", "x4"])
    os_tau = np.where(X["x1"] > 0.5, 0.3, -0.1)
    crs_tau = np.where(X["x2"] > 0.5, 0.45, 0.05)
    e = 1 / (1 + np.exp(-(X["x3"].to_numpy() - 0.5)))
    _, os_scores = _oracle_scores(rng, os_tau, np.full(n, 0.5), e)
    _, crs_scores = _oracle_scores(rng, crs_tau, np.full(n, 0.3), e)
    return X, os_tau, crs_tau, os_scores, crs_scores


def test_policy_tree_picks_the_better_arm_per_region_and_switches_with_crs_weight():
    X, os_tau, crs_tau, os_scores, crs_scores = _policy_world(seed=11)
    centres = pd.DataFrame(
        [(a, b, 0.5, 0.5) for a in (0.15, 0.85) for b in (0.15, 0.85)],
        columns=["x1", "x2", "x3", "x4"],
    )
    os_only = policy_tree(X, os_scores, crs_scores, crs_weight=0.0)
    assert list(os_only.predict(centres)) == ["tec", "tec", "cart", "cart"]
    # weight 1: where x2 > 0.5 the CRS harm (0.45) outweighs the OS gain (0.3)
    harm = policy_tree(X, os_scores, crs_scores, crs_weight=1.0)
    assert list(harm.predict(centres)) == ["tec", "tec", "cart", "tec"]
    best = np.where(os_tau - crs_tau > 0, "cart", "tec")
    # regions are a quarter of the cohort each and net effects are >= 0.15 away from 0: the
    # exhaustive search recovers the optimal policy for >= 90% of patients (misses are near the
    # 0.5 boundaries; seeds 11-20 give 0.91-0.99)
    assert (harm.predict(X) == best).mean() >= 0.9
    assert 0.2 <= harm.share_cart <= 0.3  # truth: 0.25
    for leaf in harm.leaves:
        assert leaf.action == ("cart" if leaf.net_benefit > 0 else "tec")
    assert sum(leaf.n for leaf in harm.leaves) == len(X)


def test_policy_values_are_means_of_value_scores_and_cover_the_truth():
    X, os_tau, crs_tau, os_scores, crs_scores = _policy_world(seed=12)
    res = policy_tree(X, os_scores, crs_scores, crs_weight=0.5)
    net = os_scores - 0.5 * crs_scores
    treat = res.predict(X) == "cart"
    assert res.value_policy.estimate == pytest.approx(np.mean(net * treat))
    assert res.value_all_cart.estimate == pytest.approx(np.mean(net))
    assert (res.value_all_tec.estimate, res.value_all_tec.upper) == (0.0, 0.0)
    true_net = os_tau - 0.5 * crs_tau
    assert res.value_all_cart.lower <= true_net.mean() <= res.value_all_cart.upper
    # the true value of the learned policy lies in its interval (in-sample optimism is small
    # here: strong signal, 4000 patients, depth 2)
    assert res.value_policy.lower <= np.mean(true_net * treat) <= res.value_policy.upper
    assert res.share_cart == pytest.approx(treat.mean())


@pytest.mark.slow
def test_in_sample_policy_value_is_optimistic_and_cross_validated_value_is_not():
    in_sample, held_out = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = 800
        X = pd.DataFrame(rng.uniform(size=(n, 3)), columns=["x1", "x2", "x3"])
        _, g = _oracle_scores(rng, np.zeros(n), np.full(n, 0.4), np.full(n, 0.5))  # no effect
        in_sample.append(policy_tree(X, g).value_policy.estimate)
        held_out.append(policy_value_cv(X, g, random_state=seed).estimate)
    # every policy is worth exactly 0 here. The search finds noise worth ~0.06 per patient
    # in-sample; held-out values average 0 (per-seed SE ~0.03, so the mean of 20 has SE ~0.007:
    # 0.025 is > 3 SE)
    assert np.mean(in_sample) > 0.03 and min(in_sample) >= 0
    assert abs(np.mean(held_out)) < 0.025
    X, os_tau, crs_tau, os_scores, crs_scores = _policy_world(seed=11)
    cv = policy_value_cv(X, os_scores, crs_scores, crs_weight=1.0, random_state=0)
    optimal = np.maximum(os_tau - crs_tau, 0).mean()  # 0.0625: CAR-T only where it helps
    assert cv.lower > 0 and cv.estimate <= optimal + 0.02
    with pytest.raises(ValueError, match="n_folds must be an integer >= 2"):
        policy_value_cv(X, os_scores, n_folds=1)


def _brute_force_value(X: np.ndarray, g: np.ndarray, min_leaf: int) -> float:
    """Best in-sample value over every tree of depth <= 2 on midpoint thresholds, enumerated."""
    n, p = X.shape
    splits = [
        (j, t) for j in range(p) for t in (lambda u: (u[:-1] + u[1:]) / 2)(np.unique(X[:, j]))
    ]

    def side(mask):
        return max(g[mask].sum(), 0.0)

    def subtree(mask):
        best = side(mask)
        for j, t in splits:
            a, b = mask & (X[:, j] <= t), mask & (X[:, j] > t)
            if a.sum() >= min_leaf and b.sum() >= min_leaf:
                best = max(best, side(a) + side(b))
        return best

    everyone = np.ones(n, dtype=bool)
    best = side(everyone)
    for j, t in splits:
        a, b = X[:, j] <= t, X[:, j] > t
        if a.sum() >= min_leaf and b.sum() >= min_leaf:
            best = max(best, subtree(a) + subtree(b))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_policy_search_is_exhaustive(seed):
    rng = np.random.default_rng(seed)
    n = 60
    X = pd.DataFrame(rng.integers(0, 6, size=(n, 3)).astype(float), columns=["a", "b", "c"])
    g = rng.normal(0, 1, n) + 0.3 * (X["a"] > 2) - 0.3 * (X["b"] > 3)
    res = policy_tree(X, g.to_numpy(), min_leaf_fraction=0.1)
    expected = _brute_force_value(X.to_numpy(), g.to_numpy(), min_leaf=6)
    assert res.value_policy.estimate * n == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert all(leaf.n >= 6 for leaf in res.leaves)


def test_policy_rejects_bad_input_naming_the_parameter():
    X, _, _, os_scores, crs_scores = _policy_world(seed=0, n=300)
    with pytest.raises(ValueError, match="crs_weight must be a finite number >= 0"):
        policy_tree(X, os_scores, crs_scores, crs_weight=-0.1)
    with pytest.raises(ValueError, match="crs_scores are required"):
        policy_tree(X, os_scores, crs_weight=0.5)
    with pytest.raises(ValueError, match="os_scores must have one value per row"):
        policy_tree(X, os_scores[:10])
    bad = crs_scores.copy()
    bad[5] = np.inf
    with pytest.raises(ValueError, match=r"crs_scores must be finite; rows \[5\]"):
        policy_tree(X, os_scores, bad, crs_weight=1.0)
    with pytest.raises(ValueError, match="max_depth must be at most 2"):
        policy_tree(X, os_scores, max_depth=3)


def test_leaf_index_needs_the_fit_columns():
    with pytest.raises(ValueError, match="lacks column 'z'"):
        assign_leaves(pd.DataFrame({"x": [1.0]}), [[Condition("z", 0.0, True)]])


# --------------------------------------------------------------------------------------------------
# prespecified subgroups


def _clinical_world(seed: int, n: int = 1200):
    """A raw cohort whose CRS-like risk difference is 0.10 + 0.15 extramedullary - 0.10 age >= 75."""
    rng = np.random.default_rng(seed)
    cohort = pd.DataFrame(
        {
            "age": np.round(rng.normal(66, 9, n), 1),
            "prior_asct": rng.uniform(size=n) < 0.6,
            "extramedullary": rng.uniform(size=n) < 0.25,
            "high_risk_cytogenetics": rng.uniform(size=n) < 0.35,
            "ecog": rng.choice([0, 1, 2, 3], size=n, p=[0.35, 0.45, 0.15, 0.05]),
        }
    )
    tau = 0.10 + 0.15 * cohort["extramedullary"] - 0.10 * (cohort["age"] >= 75)
    e = 1 / (1 + np.exp(-(0.03 * (70 - cohort["age"]) + 0.4 * cohort["prior_asct"])))
    w, scores = _oracle_scores(rng, tau.to_numpy(), np.full(n, 0.4), e.to_numpy())
    cohort["treatment"] = np.where(w == 1, "cart", "tec")
    return cohort, tau.to_numpy(), scores


@pytest.mark.slow
def test_prespecified_intervals_cover_the_truth():
    hits = {"estimate": 0, "difference": 0}
    total = 0
    for seed in range(30):
        cohort, tau, scores = _clinical_world(seed)
        table = prespecified_subgroups(cohort, scores, truth=tau)
        assert table["note"].isna().all()
        for _, row in table.iterrows():
            member = {
                "age >= 65": cohort["age"] >= 65,
                "age >= 75": cohort["age"] >= 75,
                "prior transplant": cohort["prior_asct"],
                "extramedullary": cohort["extramedullary"],
                "high-risk cytogenetics": cohort["high_risk_cytogenetics"],
                "ECOG >= 2": cohort["ecog"] >= 2,
            }[row["subgroup"]].to_numpy()
            assert row["truth"] == pytest.approx(tau[member].mean())
            true_diff = tau[member].mean() - tau[~member].mean()
            hits["estimate"] += row["lower"] <= row["truth"] <= row["upper"]
            hits["difference"] += row["difference_lower"] <= true_diff <= row["difference_upper"]
            total += 1
    # 180 intervals of nominal 95% coverage: binomial sd ~0.016, so 0.90 is > 3 sd below nominal
    assert hits["estimate"] / total >= 0.90
    assert hits["difference"] / total >= 0.90


def test_prespecified_reports_the_interaction_and_estimators():
    cohort, tau, scores = _clinical_world(seed=5, n=4000)
    cate = {"oracle": tau, "flat": np.full(len(tau), tau.mean())}
    table = prespecified_subgroups(cohort, scores, cate=cate, truth=tau).set_index("subgroup")
    emd = table.loc["extramedullary"]
    # true interaction +0.15 with ~4000 patients (SE ~0.035): detected
    assert emd["difference_p_value"] < 0.01 and emd["difference_lower"] > 0
    assert emd["difference"] == pytest.approx(emd["estimate"] - emd["complement_estimate"])
    assert emd["mean_cate_oracle"] == pytest.approx(emd["truth"])
    assert emd["mean_cate_flat"] == pytest.approx(tau.mean())
    row = table.loc["age >= 65"]
    assert row["n"] + row["complement_n"] == len(cohort)
    assert row["n_cart"] + row["n_tec"] == row["n"]


def test_prespecified_notes_absent_columns_small_groups_and_missing_values():
    cohort, _, scores = _clinical_world(seed=6, n=600)
    cohort = cohort.drop(columns="prior_asct")
    cohort["ecog"] = cohort["ecog"].astype(float)
    cohort.loc[cohort.index[:3], "ecog"] = np.nan
    cohort.loc[cohort["ecog"] >= 2, "ecog"] = 1.0
    cohort.loc[cohort.index[3:8], "ecog"] = 2.0  # five patients with ECOG >= 2
    table = prespecified_subgroups(cohort, scores).set_index("subgroup")
    assert table.loc["prior transplant", "note"] == "column 'prior_asct' absent from the cohort"
    ecog = table.loc["ECOG >= 2"]
    assert "3 patients with missing ecog left out" in ecog["note"]
    assert "not estimated: fewer than 10 patients" in ecog["note"]
    assert np.isnan(ecog["estimate"]) and ecog["n"] == 5
    assert ecog["n"] + ecog["complement_n"] == len(cohort) - 3
    assert pd.isna(table.loc["age >= 65", "note"])


def test_prespecified_rejects_bad_input_naming_the_parameter():
    cohort, tau, scores = _clinical_world(seed=7, n=200)
    with pytest.raises(ValueError, match="scores must have one value per row"):
        prespecified_subgroups(cohort, scores[:-1])
    with pytest.raises(ValueError, match=r"cate\['m'\] must have one value per row"):
        prespecified_subgroups(cohort, scores, cate={"m": tau[:5]})
    with pytest.raises(ValueError, match="truth must be finite"):
        prespecified_subgroups(cohort, scores, truth=np.full(len(tau), np.nan))
    bad = cohort.assign(treatment=np.where(np.arange(len(cohort)) == 2, "placebo", "cart"))
    with pytest.raises(ValueError, match=r"treatment must be 'cart' or 'tec'; rows \[2\]"):
        prespecified_subgroups(bad, scores)
    with pytest.raises(ValueError, match="no 'treatment' column"):
        prespecified_subgroups(cohort.drop(columns="treatment"), scores)


def test_every_combination_of_conditions_partitions_the_cohort():
    # leaves returned by both tools partition the patients: each row in exactly one leaf
    X, _, cate, scores = _step_world(seed=4, n=800)
    rules = cate_rules(X, cate, scores, random_state=0)
    policy = policy_tree(X, scores, max_depth=2)
    for leaves in ([r.conditions for r in rules.leaves], [p.conditions for p in policy.leaves]):
        hits = np.zeros(len(X), dtype=int)
        for conditions in leaves:
            mask = np.ones(len(X), dtype=bool)
            for c in conditions:
                mask &= (X[c.feature] > c.threshold) if c.above else (X[c.feature] <= c.threshold)
            hits += mask
        assert (hits == 1).all()
