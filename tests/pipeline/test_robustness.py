"""robustness_checks on a small synthetic cohort: the exact metrics.json shape, JSON-ready."""

import json
import math

import pytest

import hte.pipeline.robustness as robustness
from hte.config import load_config
from hte.pipeline.stages import (
    baseline_averages,
    prepare_analysis,
    prepare_cohort,
)
from tests.pipeline.prepared import prepared_analysis

CONFIG = """\
name: robust
data: {source: synthetic, n: 600}
time_zero: [decision]
outcomes:
  os: {survival_horizon: 12, rmst_horizon: null}
  crs: {any_grade: true, grade3: auto}
estimators:
  - {name: cox, kind: cox_interaction}
seeds: {global: 11}
"""

REFUTATION_KEYS = {
    "target",
    "refuter",
    "description",
    "original",
    "estimate",
    "lower",
    "upper",
    "expected",
    "passed",
    "detail",
}
EVALUE_KEYS = {"target", "measure", "estimate", "lower", "upper", "evalue", "evalue_ci", "note"}


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    path = tmp_path_factory.mktemp("robust") / "robust.yaml"
    data, config = prepared_analysis(path, CONFIG, shared_nuisances=False)
    baselines = baseline_averages(data, config)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(robustness, "N_SUBSETS", 2)  # the shape, not the stability, is tested here
        out = robustness.robustness_checks(data, baselines, config, config.seed)
    return out, baselines


def test_exact_shape_and_json_ready(checks):
    out, _ = checks
    assert set(out) == {"refutations", "evalues"}
    json.dumps(out, allow_nan=False)  # NaN would raise: must be None
    pairs = [(r["target"], r["refuter"]) for r in out["refutations"]]
    refuters = ["placebo_treatment", "random_common_cause", "data_subsets"]
    assert pairs == [(t, r) for t in ("survival", "crs", "crs_g3") for r in refuters]
    for r in out["refutations"]:
        assert set(r) == REFUTATION_KEYS
        assert isinstance(r["passed"], bool)
        for key in ("original", "estimate", "lower", "upper"):
            assert isinstance(r[key], float) and math.isfinite(r[key])
        assert all(isinstance(r[k], str) and r[k] for k in ("description", "expected", "detail"))
        assert r["lower"] <= r["estimate"] <= r["upper"]
    assert [(e["target"], e["measure"]) for e in out["evalues"]] == [
        ("survival", "RR"),
        ("crs", "RR"),
        ("crs_g3", "RR"),
        ("os", "HR"),
    ]
    for e in out["evalues"]:
        assert set(e) == EVALUE_KEYS
        assert e["lower"] <= e["estimate"] <= e["upper"]
        assert e["evalue"] >= e["evalue_ci"] >= 1.0


def test_values_agree_with_the_baselines(checks):
    out, baselines = checks
    hr = next(e for e in out["evalues"] if e["measure"] == "HR")
    assert hr["estimate"] == pytest.approx(baselines["hazard_ratio_iptw"]["hr"])
    assert "common" in hr["note"]  # death by 24 months is far above 15% in the synthetic cohort
    # the CRS original is the pipeline's AIPW baseline: same learners, same seed, same folds
    crs = next(r for r in out["refutations"] if r["target"] == "crs")
    assert crs["original"] == pytest.approx(baselines["ate_crs_aipw"]["estimate"], abs=1e-12)
    # CAR-T lowers the risk of death by 12 months in the synthetic cohort: RR < 1
    assert next(e for e in out["evalues"] if e["target"] == "survival")["estimate"] < 1


def _crs_only(tmp_path):
    """The test config without OS (CRS targets only), and its analysis."""
    path = tmp_path / "crs_only.yaml"
    path.write_text(
        CONFIG.replace(
            "os: {survival_horizon: 12, rmst_horizon: null}", "os: {enabled: false}"
        ).replace("{name: cox, kind: cox_interaction}", "{name: lr, kind: logistic_interaction}"),
        encoding="utf-8",
    )
    config = load_config(path)
    cohort, _ = prepare_cohort(config)
    data = prepare_analysis(cohort, config.time_zero[0])
    return config, data


def test_a_failing_estimate_is_recorded_and_the_rest_go_on(tmp_path, monkeypatch):
    config, data = _crs_only(tmp_path)

    def broken(X, W, y, seed, **kwargs):
        raise ValueError("no CRS recorded in one arm")

    monkeypatch.setattr(robustness, "aipw_risk_difference", broken)
    out = robustness.robustness_checks(data, {}, config, config.seed)
    json.dumps(out, allow_nan=False)
    assert {r["target"] for r in out["refutations"]} == {"crs", "crs_g3"}
    assert all(not r["passed"] and "no CRS recorded" in r["detail"] for r in out["refutations"])
    assert all(set(r) == REFUTATION_KEYS for r in out["refutations"])
    assert [e["evalue"] for e in out["evalues"]] == [None, None]
    assert all(set(e) == EVALUE_KEYS and "no CRS" in e["note"] for e in out["evalues"])


def test_a_failing_re_estimate_fails_its_target_only(tmp_path, monkeypatch):
    # the re-estimates run as one flat list: a subset whose estimate fails marks its target's
    # refutations failed (with the reason), the E-value from the original stays
    config, data = _crs_only(tmp_path)
    full = len(data.cohort)
    real = robustness.aipw_risk_difference

    def fails_on_subsets(X, W, y, seed, **kwargs):
        if len(y) < full and y.mean() < 0.2:  # the grade >= 3 subsets only
            raise ValueError("too few events in a subset")
        return real(X, W, y, seed, **kwargs)

    monkeypatch.setattr(robustness, "aipw_risk_difference", fails_on_subsets)
    out = robustness.robustness_checks(data, {}, config, config.seed)
    by_target = {}
    for r in out["refutations"]:
        by_target.setdefault(r["target"], []).append(r)
    assert all("too few events" in r["detail"] for r in by_target["crs_g3"])
    assert not any("too few events" in r["detail"] for r in by_target["crs"])
    assert all(e["evalue"] is not None for e in out["evalues"])


def test_the_targets_share_each_data_sets_propensity_with_the_same_numbers(tmp_path, monkeypatch):
    # the CRS targets' re-runs are the same data sets (one placebo, one noise column, the same
    # subsets): each propensity is cross-fitted once and read by both targets, and every number
    # is the one that refitting it per estimate gives
    config, data = _crs_only(tmp_path)
    monkeypatch.setattr(robustness, "N_SUBSETS", 2)
    fits = []
    real = robustness.cross_fit_propensity

    def counted(X, W, **kwargs):
        fits.append(len(W))
        return real(X, W, **kwargs)

    monkeypatch.setattr(robustness, "cross_fit_propensity", counted)
    shared = robustness.robustness_checks(data, {}, config, config.seed)
    # the originals (one data set: every patient carries both outcomes), the placebo, the
    # noise column and 2 subsets: 5 cross-fits for the 2 targets' 10 estimates
    assert fits[0] == len(data.cohort)  # the originals' data set first
    assert len(fits) == 5
    monkeypatch.setattr(robustness, "_shared_propensities", lambda sets, known, seed: {})
    refitted = robustness.robustness_checks(data, {}, config, config.seed)
    assert len(fits) == 5  # none through the shared path: each estimate fitted its own
    assert shared == refitted


def test_the_survival_original_reads_the_analysis_propensity(tmp_path):
    # with the analysis's shared nuisances (same seed, 5 folds) the whole-cohort data set's
    # propensity is the design's cross-fit: not fitted again, and the same numbers
    data, config = prepared_analysis(tmp_path / "robust.yaml", CONFIG)
    X = data.X.to_numpy(dtype=float)
    known = robustness._known_propensity(data, X, config.seed)
    [(key, values)] = known.items()
    assert key == robustness._data_key(X, data.treatment) and values is data.propensity
    t, d = data.survival_outcome()
    fn = robustness.aipcw_survival_difference
    kwargs = {"horizon": 12.0, "seed": config.seed, "n_jobs": 1}
    from_known = fn(X, data.treatment, t, d, propensity=data.propensity, **kwargs)
    refitted = fn(X, data.treatment, t, d, **kwargs)
    assert from_known.estimate == refitted.estimate
    assert from_known.std_err == refitted.std_err
