"""The experiment pipeline end to end on tiny synthetic configs: run folder contents, byte-identical
metrics on rerun, effects table, truth metrics, hash-checked models, scoring new patients, and the
immortal-time comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte.config import load_config
from hte.data.simulate import simulate_cohort
from hte.pipeline import PredictError, predict_run, run_experiment
from hte.runs import ModelIntegrityError

TINY = """\
name: tiny
data: {source: synthetic, n: 300}
time_zero: [decision]
outcomes:
  os: {survival_horizon: 12, rmst_horizon: 24}
  crs: {any_grade: true, grade3: false}
estimators:
  - {name: cox, kind: cox_interaction}
  - {name: logit, kind: logistic_interaction, params: {penalty: 1.0}}
  - name: tl
    kind: t_learner
    params: {base_learner: rsf, base_params: {n_estimators: 20, min_samples_leaf: 10}}
  - {name: csf, kind: causal_survival_forest, params: {n_estimators: 40, min_samples_leaf: 10}}
evaluation: {robustness: false}
explanation: {shap: true, n_patients_shap: 60, subgroup_rules: false}
seeds: {global: 5}
"""

IMMORTAL = """\
name: immortal
data: {source: synthetic, n: 2000}
time_zero: [decision, infusion]
outcomes:
  os: {survival_horizon: 12, rmst_horizon: null}
  crs: {enabled: false}
estimators:
  - {name: cox, kind: cox_interaction}
evaluation: {truth_metrics: true, matching: true, robustness: false}
explanation: {shap: false, subgroup_rules: false}
seeds: {global: 21}
"""


@pytest.fixture(scope="module")
def hte_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hte_home")


@pytest.fixture(autouse=True)
def _own_key(hte_home, monkeypatch):
    monkeypatch.setenv("HTE_HOME", str(hte_home))


def _config(tmp_path: Path, text: str, name: str = "exp.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, hte_home):
    """The tiny experiment run twice with the same seed (models written on the first run)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HTE_HOME", str(hte_home))
    root = tmp_path_factory.mktemp("runs")
    config = _config(root, TINY)
    first = run_experiment(config, output_root=root, progress=False)
    second = run_experiment(config, output_root=root, progress=False, write_models=False)
    mp.undo()
    return first, second


def test_run_folder_holds_every_artefact(tiny_runs):
    run_dir = tiny_runs[0].run_dir
    for name in (
        "config.resolved.yaml",
        "fingerprint.json",
        "versions.json",
        "seeds.json",
        "metrics.json",
        "timings.json",
        "effects.parquet",
        "run.log",
        "models/manifest.json",
        "models/decision/encoder.joblib",
        "models/decision/csf__rmst.joblib",
        "figures/cate_decision.png",
        "figures/overlap_decision.png",
        "nuisances/decision.npz",
        "complete.json",
    ):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.parent.glob("*.partial*"))  # renamed into place
    fingerprint = json.loads((run_dir / "fingerprint.json").read_text())
    cohort = simulate_cohort(300, seed=5)
    assert fingerprint["n"] == 300 and fingerprint["columns"] == list(cohort.columns)
    versions = json.loads((run_dir / "versions.json").read_text())
    assert {"python", "numpy", "econml", "scikit-survival"} <= set(versions)
    assert run_dir.parent.name == "tiny" and run_dir.name.endswith(
        tiny_runs[0].metrics["experiment"]["config_sha256"][:8]
    )


def test_same_config_and_seed_give_byte_identical_metrics(tiny_runs):
    first, second = tiny_runs
    assert first.run_dir != second.run_dir
    a = (first.run_dir / "metrics.json").read_bytes()
    b = (second.run_dir / "metrics.json").read_bytes()
    assert a == b
    assert "seconds" not in a.decode()  # timings live in timings.json
    pd.testing.assert_frame_equal(first.effects, second.effects)


def test_metrics_hold_design_baselines_estimates_and_truth(tiny_runs):
    m = tiny_runs[0].metrics
    assert m["failures"] == []
    a = m["analyses"]["decision"]
    assert a["n_analysed"] == 300 and a["n_excluded_by_reason"] == {}
    assert a["balance"]["max_abs_smd_iptw"] < a["balance"]["max_abs_smd"]
    assert set(a["baselines"]) == {
        "hazard_ratio_iptw",
        "ate_survival_iptw_km",
        "ate_rmst_iptw_km",
        "ate_crs_aipw",
    }
    assert set(a["estimators"]) == {"cox", "logit", "tl", "csf"}
    assert set(a["estimators"]["csf"]) == {"survival", "rmst"}
    csf = a["estimators"]["csf"]["rmst"]
    assert csf["average"]["lower"] < csf["mean_effect"] < csf["average"]["upper"]
    # truth metrics against the cohort's true CATE columns; the true ATE is the cohort's mean
    cohort = simulate_cohort(300, seed=5)
    truth = a["estimators"]["logit"]["crs"]["truth"]
    assert truth["truth_column"] == "true_cate_crs"
    assert truth["ate_true"] == pytest.approx(cohort["true_cate_crs"].mean(), rel=1e-9)
    assert 0 <= truth["coverage"] <= 1


def test_effects_table_has_one_row_per_patient_with_intervals(tiny_runs):
    effects = tiny_runs[0].effects
    assert len(effects) == 300 and effects["patient_id"].is_unique
    assert set(effects["analysis"]) == {"decision"}
    lo, eff, hi = (effects[f"csf__rmst__{k}"] for k in ("lower", "effect", "upper"))
    assert ((lo <= eff) & (eff <= hi)).all()
    # per-arm predictions: S at 12 months from the curve models, CRS risk per arm from logit
    s_diff = effects["tl__survival__s_cart"] - effects["tl__survival__s_tec"]
    np.testing.assert_allclose(s_diff, effects["tl__survival__effect"], atol=1e-12)
    r_diff = effects["logit__crs__risk_cart"] - effects["logit__crs__risk_tec"]
    np.testing.assert_allclose(r_diff, effects["logit__crs__effect"], atol=1e-12)
    on_disk = pd.read_parquet(tiny_runs[0].run_dir / "effects.parquet")
    pd.testing.assert_frame_equal(on_disk, effects)


def _new_patients(tmp_path: Path, rows: slice) -> Path:
    """Patients of the tiny cohort as a clinic would send them: covariates only."""
    cohort = simulate_cohort(300, seed=5).iloc[rows]
    keep = [c for c in cohort.columns if not c.startswith("true_")]
    new = cohort[keep].drop(
        columns=["treatment", "os_months", "death", "crs", "crs_grade", "infusion_day"]
    )
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    return path


def test_predict_reproduces_the_run_effects_for_the_same_patients(tiny_runs, tmp_path):
    run = tiny_runs[0]
    scored = predict_run(run.run_dir, _new_patients(tmp_path, slice(10, 40)))
    expected = run.effects.iloc[10:40].reset_index(drop=True)
    columns = [c for c in expected.columns if "__" in c]
    assert sorted(c for c in scored.columns if "__" in c) == sorted(columns)
    assert scored["patient_id"].tolist() == expected["patient_id"].tolist()
    # same models, same encoding, same rows: equal up to float round-off of the file round trip
    np.testing.assert_allclose(scored[columns], expected[columns], rtol=1e-9, atol=1e-12)


def test_predict_refuses_unseen_levels_and_tampered_models(tiny_runs, tmp_path):
    run = tiny_runs[0]
    path = _new_patients(tmp_path, slice(0, 5))
    new = pd.read_csv(path)
    new.loc[2, "race"] = "martian"
    new.to_csv(path, index=False)
    with pytest.raises(PredictError, match=r"race.*not seen when the encoding was fitted"):
        predict_run(run.run_dir, path)
    with pytest.raises(PredictError, match="no analysis 'landmark'"):
        predict_run(run.run_dir, path, analysis="landmark")
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(run.run_dir, copy)
    model = copy / "models" / "decision" / "cox__rmst.joblib"
    data = model.read_bytes()
    model.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # always a change (was: last byte -> "x")
    with pytest.raises(ModelIntegrityError, match=r"cox__rmst\.joblib has changed"):
        predict_run(copy, _new_patients(tmp_path, slice(0, 5)))


def test_predict_validates_new_rows_with_the_schema(tiny_runs, tmp_path):
    path = _new_patients(tmp_path, slice(0, 5))
    new = pd.read_csv(path)
    new.loc[1, "age"] = -3
    new.to_csv(path, index=False)
    with pytest.raises(PredictError, match="age"):
        predict_run(tiny_runs[0].run_dir, path)
    new.loc[1, "age"] = 63
    new.drop(columns="ecog").to_csv(path, index=False)
    with pytest.raises(PredictError, match=r"lacks covariates the encoding needs: \['ecog'\]"):
        predict_run(tiny_runs[0].run_dir, path)


def test_infusion_time_zero_overstates_the_cart_benefit(tmp_path):
    """The naive infusion analysis drops never-infused CAR-T patients and hands CAR-T the waiting
    time: its hazard ratio is lower (better for CAR-T) than the decision-time one and than the
    truth, and its survival gain larger than the decision-time truth."""
    config = _config(tmp_path, IMMORTAL)
    result = run_experiment(config, output_root=tmp_path, progress=False, write_models=False)
    rows = {r["analysis"]: r for r in result.metrics["time_zero_comparison"]}
    decision, infusion = rows["decision"], rows["infusion"]
    assert infusion["n_excluded"] > 0 and decision["n_excluded"] == 0
    # SE of each IPTW log-HR is ~0.07 at n = 2000; the calibrated gap is ~0.1 in HR
    assert infusion["hazard_ratio_iptw"] < decision["hazard_ratio_iptw"] - 0.03
    assert infusion["hazard_ratio_iptw"] < infusion["hazard_ratio_true"]
    assert infusion["ate_survival_iptw_km_bias"] > decision["ate_survival_iptw_km_bias"]
    # the propensity-matched comparison beside IPTW (the 802MO design)
    a = result.metrics["analyses"]["decision"]
    matched = a["baselines"]["matched"]
    n_cart, n_tec = a["n_by_arm"]["cart"], a["n_by_arm"]["tec"]
    assert matched["n_pairs"] + matched["n_unmatched_cart"] == n_cart
    assert matched["n_pairs"] + matched["n_unmatched_tec"] == n_tec
    assert matched["max_abs_smd_matched"] < a["balance"]["max_abs_smd"]
    # both estimate a marginal HR of the same cohort; SE of each log-HR ~0.08 and they share data
    iptw_hr = a["baselines"]["hazard_ratio_iptw"]["hr"]
    assert abs(np.log(matched["hazard_ratio"]["hr"]) - np.log(iptw_hr)) < 0.2


def test_run_writes_shap_attributions_that_add_up(tiny_runs):
    run_dir, m = tiny_runs[0].run_dir, tiny_runs[0].metrics
    estimators = m["analyses"]["decision"]["estimators"]
    fitted = [(e, t) for e, by in estimators.items() for t, v in by.items() if "error" not in v]
    assert len(fitted) == 7  # cox, tl, csf x (survival, rmst) + logit x crs
    for estimator, target in fitted:
        path = run_dir / "attributions" / f"decision__{estimator}__{target}.parquet"
        frame = pd.read_parquet(path)
        shap_cols = [c for c in frame.columns if c.startswith("shap__")]
        assert len(frame) == 60 and len(shap_cols) == len(
            m["analyses"]["decision"]["design"]["features"]
        )
        assert frame["row"].is_unique and frame["row"].between(0, 299).all()
        # TreeSHAP is exact for the surrogate: only float summation error remains
        total = frame["base_value"] + frame[shap_cols].sum(axis=1)
        np.testing.assert_allclose(total, frame["effect"], rtol=0, atol=1e-6)
        summary = estimators[estimator][target]["attributions"]
        assert summary["method"] == "surrogate" and summary["n_patients"] == 60
        assert summary["surrogate_r2_in_sample"] >= summary["surrogate_r2_cv"] - 1e-9
        names = [name for name, _ in summary["top_importance"]]
        values = [value for _, value in summary["top_importance"]]
        assert len(names) == 5 and set(names) <= {c[len("shap__") :] for c in shap_cols}
        assert values == sorted(values, reverse=True)
        # the listed importances are the parquet's mean |SHAP|, not a separate computation
        mean_abs = frame[["shap__" + n for n in names]].abs().mean().to_numpy()
        np.testing.assert_allclose(values, mean_abs, rtol=1e-8)
        assert (run_dir / "figures" / f"shap_decision__{estimator}__{target}.png").is_file()
    assert m["explanation"]["shap"].startswith("run")
    assert m["explanation"]["subgroup_rules"].startswith("not run")
    # per-arm predictions are explained too where the estimator has them (not the causal forest)
    assert "arms" not in estimators["csf"]["survival"]["attributions"]
    for estimator, target, arm_label in (
        ("cox", "survival", "S_cart(12 months | x)"),
        ("logit", "crs", "P(outcome | x, cart)"),
    ):
        arms = estimators[estimator][target]["attributions"]["arms"]
        assert set(arms) == {"cart", "tec"} and arms["cart"]["prediction"] == arm_label
        for arm in ("cart", "tec"):
            path = run_dir / "attributions" / f"decision__{estimator}__{target}__arm_{arm}.parquet"
            frame = pd.read_parquet(path)
            shap_cols = [c for c in frame.columns if c.startswith("shap__")]
            total = frame["base_value"] + frame[shap_cols].sum(axis=1)
            np.testing.assert_allclose(total, frame["effect"], rtol=0, atol=1e-6)
            # a risk or a survival probability: the surrogate's values stay near [0, 1]
            assert frame["model_effect"].between(0, 1).all()


def test_run_records_rate_and_blp_per_fit_or_a_skip_reason(tiny_runs):
    analysis = tiny_runs[0].metrics["analyses"]["decision"]
    sources = analysis["heterogeneity_scores"]
    assert set(sources) == {"survival", "rmst", "crs"}
    # OS scores come from the analysis's shared nuisances, the ones the forest was fitted with
    assert "shared nuisances" in sources["survival"] and "AIPW" in sources["crs"]
    for by_target in analysis["estimators"].values():
        for target, summary in by_target.items():
            if "error" in summary:
                continue
            tests = summary["heterogeneity"]
            assert tests["in_sample"] is False  # cross-fitted priorities, said so
            folds = 2 if target.startswith("crs") else 5  # the default folds per outcome
            assert tests["priorities"].startswith(f"{folds}-fold cross-fitted")
            assert len(tests["toc"]["q"]) == len(tests["toc"]["toc"]) == 20
            for kind in ("autoc", "qini"):
                r = tests[kind]
                assert r["lower"] <= r["estimate"] <= r["upper"] and 0 <= r["p_value"] <= 1
            blp = tests["blp"]
            assert blp["differential_se"] > 0 and 0 <= blp["differential_p_value"] <= 1


def test_survival_targets_without_a_forest_get_their_own_scores(tmp_path, hte_home):
    text = TINY.replace(
        "  - {name: csf, kind: causal_survival_forest, params: {n_estimators: 40, "
        "min_samples_leaf: 10}}\n",
        "",
    ).replace("shap: true", "shap: false")
    config = _config(tmp_path, text.replace("n: 300", "n: 200"))
    result = run_experiment(config, output_root=tmp_path, progress=False, write_models=False)
    analysis = result.metrics["analyses"]["decision"]
    assert analysis["heterogeneity_scores"]["survival"].startswith("AIPCW")
    assert "forest" not in analysis["heterogeneity_scores"]["survival"]
    assert analysis["estimators"]["cox"]["survival"]["heterogeneity"]["in_sample"] is False
    assert "heterogeneity" in analysis["estimators"]["logit"]["crs"]


def test_heldout_folds_from_the_config_reach_the_refits(tmp_path, hte_home):
    text = (
        TINY.replace(
            "  - {name: csf, kind: causal_survival_forest, params: {n_estimators: 40, "
            "min_samples_leaf: 10}}\n",
            "",
        )
        .replace("shap: true", "shap: false")
        .replace(
            "evaluation: {robustness: false}",
            "evaluation: {robustness: false, heldout_folds: {os: 3, crs: 4}}",
        )
    )
    config = _config(tmp_path, text.replace("n: 300", "n: 200"))
    assert (config.evaluation.heldout_folds.os, config.evaluation.heldout_folds.crs) == (3, 4)
    result = run_experiment(config, output_root=tmp_path, progress=False, write_models=False)
    estimators = result.metrics["analyses"]["decision"]["estimators"]
    os_tests = estimators["cox"]["survival"]["heterogeneity"]
    assert os_tests["priorities"].startswith("3-fold cross-fitted")
    assert "the other 2 folds" in os_tests["priorities"]
    crs_tests = estimators["logit"]["crs"]["heterogeneity"]
    assert crs_tests["priorities"].startswith("4-fold cross-fitted")
