"""The profile explorer (hte.pipeline.profile) on a small run of configs/default.yaml: effects agree
with the run's own estimates, curves and bands are well formed, bad profiles are refused naming the
field, low support is flagged, waterfalls add up, what-if sweeps move one field, JSON round-trips;
and the cheap models behind it against closed forms and reference implementations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte.config import load_config
from hte.estimators.grf_reader import grf_reader
from hte.estimators.prognosis import (
    Standardizer,
    fit_cox_ensemble,
    fit_ridge_cox,
    fit_ridge_logistic,
    percentile_band,
)
from hte.pipeline import prepare_cohort, run_experiment
from hte.pipeline.profile import ProfileError, ProfileExplorer, encode_row
from hte.runs import CONFIG_FILE, ModelStore, load_model, read_manifest

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
# n ~ 400, few trees, SHAP off; the CSF, the CRS forest and a Cox baseline are what the explorer
# reads (the other estimators of the default config add run time, not coverage)
OVERRIDES = [
    "data.n=400",
    "explanation.shap=false",
    "evaluation.robustness=false",
    "outcomes.os.survival_horizon=12",
    "outcomes.os.rmst_horizon=24",
    "estimators=[{name: causal_survival_forest, kind: causal_survival_forest, params: "
    "{n_estimators: 200, min_samples_leaf: 10, n_folds: 3}}, {name: crs_causal_forest, kind: "
    "crs_causal_forest, params: {n_estimators: 100}}, {name: cox_interaction, kind: "
    "cox_interaction}]",
    "seeds.global=11",
    "evaluation.model_average=null",  # its members (BCF, S-learner) are not fitted here
]
# The explorer reads the same forests on the same covariates as the run did: equal up to float
# summation order (the fast reader sums trees in one pass), far below any reported digit.
SAME_MODEL_ATOL = 1e-9


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("hte_home")
    mp = pytest.MonkeyPatch()  # the run's signing key, kept for every test of the module
    mp.setenv("HTE_HOME", str(home))
    # the run's heterogeneity tests (RATE/BLP) are most of its time and nothing the explorer
    # reads: skipped here to keep the module within its time budget
    mp.setattr("hte.pipeline.run.heterogeneity_tests", lambda *args, **kwargs: ({}, {}))
    # so are the held-out refits and the model choice: without a choice the explorer uses its
    # preference order (the forests), which these tests check; the chosen-model paths are
    # tested below by replacing the bundle's sources
    mp.setattr("hte.pipeline.run.all_heldout_effects", lambda *args, **kwargs: {})
    mp.setattr("hte.pipeline.run.model_choices", lambda *args, **kwargs: ({}, {}))
    root = tmp_path_factory.mktemp("runs")
    config = load_config(CONFIG, [*OVERRIDES, f"output.root={root}"])
    result = run_experiment(config, progress=False)
    cohort, _ = prepare_cohort(config)
    yield result, cohort, config
    mp.undo()


@pytest.fixture(scope="module")
def explorer(run):
    """A warm explorer on the run (HTE_HOME stays set by ``run`` for the whole module)."""
    return ProfileExplorer.from_run(run[0].run_dir)


def _profile(explorer: ProfileExplorer, row: pd.Series) -> dict:
    return {
        f.name: row[f.name].item() if hasattr(row[f.name], "item") else row[f.name]
        for f in explorer.fields()
    }


# --------------------------------------------------------------------------------------------------
# Effects against the run


def test_effects_of_a_cohort_patient_agree_with_the_run(run, explorer):
    result, cohort, _ = run
    effects = result.effects.set_index("patient_id")
    for i in (0, 57, 311):
        row = cohort.iloc[i]
        out = explorer.effects(_profile(explorer, row))
        saved = effects.loc[row["patient_id"]]
        for target, est in (
            ("survival", out.survival_difference),
            ("rmst", out.rmst_difference),
            ("crs", out.crs_difference),
            ("crs_g3", out.crs_g3_difference),
        ):
            source = explorer.bundle.sources[target].estimator
            key = f"{source}__{target}"
            assert est.source == source
            assert est.value == pytest.approx(saved[f"{key}__effect"], abs=SAME_MODEL_ATOL)
            assert est.lower == pytest.approx(saved[f"{key}__lower"], abs=SAME_MODEL_ATOL)
            assert est.upper == pytest.approx(saved[f"{key}__upper"], abs=SAME_MODEL_ATOL)
    assert explorer.bundle.sources["survival"].estimator == "causal_survival_forest"
    assert explorer.bundle.sources["crs"].estimator == "crs_causal_forest"


def test_fast_forest_reader_equals_econml(run, explorer):
    """The fast readers reproduce each forest's own point, lower and upper: the causal survival
    forest's histogram engine (HistogramReader) and the CRS causal forest (GRFReader)."""
    _, cohort, _ = run
    X = explorer.bundle.encoder.transform(cohort.iloc[:40])
    for target in ("survival", "crs"):
        model = explorer.models[target]
        reader = grf_reader(model, explorer.bundle.sources[target].kind)
        point, lower, upper, _ = reader.predict(X.to_numpy(), 0.1)
        own = model.estimate(X, alpha=0.1)
        np.testing.assert_allclose(point, own.effect, rtol=0, atol=SAME_MODEL_ATOL)
        np.testing.assert_allclose(lower, own.lower, rtol=0, atol=SAME_MODEL_ATOL)
        np.testing.assert_allclose(upper, own.upper, rtol=0, atol=SAME_MODEL_ATOL)


def test_direct_encoding_equals_the_run_encoder(run, explorer):
    _, cohort, _ = run
    assert explorer._fast_encoding
    for i in (0, 5, 99):
        row = explorer.validate(_profile(explorer, cohort.iloc[i])).iloc[0].to_dict()
        np.testing.assert_array_equal(
            encode_row(explorer.bundle.encoder, row),
            explorer.bundle.encoder.transform(cohort.iloc[[i]]).to_numpy(float),
        )


def test_curves_are_monotone_with_bands_around_them(explorer):
    for profile in [explorer.default_profile(), *explorer.examples().values()]:
        curves = explorer.effects(profile).curves
        assert curves["times"][0] == 0 and np.all(np.diff(curves["times"]) > 0)
        for arm in ("cart", "tec"):
            s, lo, hi = (np.asarray(curves[arm][k]) for k in ("survival", "lower", "upper"))
            assert s[0] == 1.0
            for v in (s, lo, hi):
                assert np.all(np.diff(v) <= 1e-12) and np.all((v >= 0) & (v <= 1))
            assert np.all(lo <= s) and np.all(s <= hi)
            assert np.any(hi - lo > 0.01)  # a band, not a line


def test_arm_estimates_and_summary_agree(explorer):
    out = explorer.effects(explorer.default_profile())
    k = list(out.curves["times"]).index(out.survival_horizon)
    assert out.survival_cart.value == out.curves["cart"]["survival"][k]
    for est in (out.survival_cart, out.survival_tec, out.crs_cart, out.crs_tec):
        assert est.lower <= est.value <= est.upper
    alive = round(100 * out.survival_cart.value)
    assert out.icon_counts["survival"]["cart"] == {"alive": alive, "dead": 100 - alive}
    assert f"about {alive} would be alive at 12 months with CAR-T" in out.summary
    a, b = round(100 * out.crs_cart.value), round(100 * out.crs_tec.value)
    word = "more" if a > b else "fewer"
    assert f"{abs(a - b)} {word} would have CRS with CAR-T than with teclistamab ({a} vs {b})" in (
        out.summary
    )
    assert out.defaults_used == () and not out.low_overlap


def test_to_json_round_trips(explorer):
    out = explorer.effects(explorer.default_profile()).to_json()
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["survival_difference"]["source"] == "causal_survival_forest"


def test_a_partial_profile_takes_the_cohort_defaults(explorer):
    out = explorer.effects({"age": 70.0})
    assert out.profile["age"] == 70.0
    assert "age" not in out.defaults_used and "ecog" in out.defaults_used
    assert out.profile["ecog"] == explorer.default_profile()["ecog"]


# --------------------------------------------------------------------------------------------------
# Validation and support


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"tumour_size": 3}, "tumour_size", "unknown field"),
        ({"age": "old"}, "age", "must be a number"),
        ({"age": float("nan")}, "age", "is unknown .empty.; every patient"),
        ({"age": None}, "age", "no way to use an unknown value"),
        ({"sex": "unknown"}, "sex", "no way to use an unknown value"),
        ({"sex": "other"}, "sex", "unknown category"),
        ({"ecog": 1.5}, "ecog", "whole number"),
        ({"ecog": 7}, "ecog", "ecog must be 0-4"),
        ({"extramedullary": "maybe"}, "extramedullary", "true or false"),
        ({"age": True}, "age", "must be a number"),
    ],
)
def test_invalid_profiles_name_the_field_and_rule(explorer, change, field, rule):
    profile = explorer.default_profile() | change
    with pytest.raises(ProfileError, match=rule) as info:
        explorer.effects(profile)
    assert info.value.field == field
    with pytest.raises(ProfileError):
        explorer.validate(profile)


def test_fields_and_examples_lie_in_the_cohort(explorer):
    fields = {f.name: f for f in explorer.fields()}
    assert fields["age"].kind == "number" and fields["age"].unit == "years"
    assert fields["ecog"].kind == "integer" and fields["sex"].kind == "category"
    assert fields["extramedullary"].kind == "boolean"
    assert set(explorer.examples()) >= {"Typical patient (cohort medians)"}
    for profile in explorer.examples().values():
        frame = explorer.validate(profile)
        for name, f in fields.items():
            if f.kind in ("number", "integer"):
                assert f.minimum <= frame[name].iloc[0] <= f.maximum, name
        assert explorer.effects(profile).out_of_range == ()


def test_out_of_range_and_low_propensity_profiles_are_flagged(run, explorer):
    _, cohort, _ = run
    age_max = next(f for f in explorer.fields() if f.name == "age").maximum
    old = explorer.effects(explorer.default_profile() | {"age": min(age_max + 10, 110)})
    assert len(old.out_of_range) == 1 and old.out_of_range[0].startswith("Age =")
    assert old.out_of_range[0] in old.warnings
    # the cohort patient the propensity model finds least likely to get CAR-T
    X = explorer.bundle.encoder.transform(cohort)
    e = explorer.bundle.propensity_model.predict(X)
    low = explorer.effects(_profile(explorer, cohort.iloc[int(np.argmin(e))]))
    lo, _ = low.propensity_support
    assert low.propensity == pytest.approx(e.min())
    assert low.propensity < max(0.05, lo)  # a fact of this seeded cohort (checked, not assumed)
    assert low.low_overlap and any("propensity score" in w for w in low.warnings)
    assert "Caution" in low.summary


def test_run_without_a_bundle_asks_for_a_rerun(run, tmp_path):
    result, _, _ = run
    (tmp_path / "models").mkdir()
    for name in (CONFIG_FILE, "fingerprint.json", "metrics.json", "complete.json"):
        (tmp_path / name).write_bytes((result.run_dir / name).read_bytes())
    ModelStore(tmp_path, "old-run").write_manifest()
    with pytest.raises(ProfileError, match="rerun") as info:
        ProfileExplorer.from_run(tmp_path)
    assert info.value.field == "run"
    with pytest.raises(ProfileError, match="no analysis 'landmark'"):
        ProfileExplorer.from_run(result.run_dir, analysis="landmark")


def test_the_bundle_is_a_hash_checked_model(run):
    result, _, _ = run
    manifest = read_manifest(result.run_dir)
    entry = manifest["files"]["decision/profile.joblib"]
    assert entry["role"] == "profile" and entry["analysis"] == "decision"
    assert load_model(result.run_dir, "decision/profile.joblib", manifest).analysis == "decision"


# --------------------------------------------------------------------------------------------------
# Explanations


@pytest.mark.parametrize("target", ["survival", "rmst", "crs"])
def test_waterfall_adds_up_in_clinical_fields(explorer, target):
    profile = next(iter(explorer.examples().values()))
    w = explorer.waterfall(profile, target)
    total = w["base_value"] + sum(c["contribution"] for c in w["contributions"])
    assert total == pytest.approx(w["surrogate_prediction"], abs=1e-6)
    # the waterfall ends at the effect the cards show: the last bar is what the surrogate misses
    assert total + w["approximation"] == pytest.approx(w["total"], abs=1e-6)
    names = [c["field"] for c in w["contributions"]]
    assert sorted(names) == sorted(f.name for f in explorer.fields())  # one row per field
    assert w["model_effect"] == pytest.approx(
        getattr(explorer.effects(profile), f"{target}_difference").value, abs=1e-12
    )
    assert -1 <= w["fidelity_r2"] <= 1


def test_what_moves_it_varies_only_the_field(explorer):
    profile = explorer.default_profile()
    age = next(f for f in explorer.fields() if f.name == "age")
    sweep = explorer.what_moves_it(profile, "age", "survival", n_points=9)
    assert len(sweep) == 9
    # 1st to 99th percentile of the cohort: outliers do not squash the sweep
    np.testing.assert_allclose(sweep["age"], np.linspace(age.p01, age.p99, 9))
    assert (sweep["lower"] <= sweep["effect"]).all() and (sweep["effect"] <= sweep["upper"]).all()
    one = explorer.effects(profile | {"age": float(sweep["age"].iloc[3])}).survival_difference
    assert sweep["effect"].iloc[3] == pytest.approx(one.value, abs=1e-12)
    assert len(explorer.what_moves_it(profile, "sex", "crs")) == 2
    with pytest.raises(ProfileError, match="unknown target"):
        explorer.what_moves_it(profile, "age", "pfs")


def test_a_shown_cox_model_without_intervals_agrees_with_the_run(run, explorer):
    # the default run chose Cox with interactions for OS (no bootstrap, so no interval): the
    # explorer reads it without lifelines' frames, gives the run's numbers, no interval, and
    # its what-moves-it figure draws (NaN bounds once broke the whole what-if tab)
    import dataclasses

    from hte.app.whatif import moves_html

    result, cohort, _ = run
    bundle = explorer.bundle
    sources, models = dict(bundle.sources), dict(explorer.models)
    for target in ("survival", "rmst"):
        relpath = f"{bundle.analysis}/cox_interaction__{target}.joblib"
        sources[target] = dataclasses.replace(
            sources[target],
            estimator="cox_interaction",
            kind="cox_interaction",
            fast=False,
            relpath=relpath,
        )
        models[target] = load_model(result.run_dir, relpath)
    ex = ProfileExplorer(dataclasses.replace(bundle, sources=sources), models)
    # fitted on the design's columns (checked once at load): queried with the row as an array
    assert ex._array_models == {"survival", "rmst"}
    effects = result.effects.set_index("patient_id")
    for i in (3, 120):
        row = cohort.iloc[i]
        out = ex.effects(_profile(ex, row))
        for target, est in (("survival", out.survival_difference), ("rmst", out.rmst_difference)):
            saved = effects.loc[row["patient_id"], f"cox_interaction__{target}__effect"]
            assert est.source == "cox_interaction" and est.lower is None and est.upper is None
            assert est.value == pytest.approx(saved, abs=1e-12)
    figure = moves_html(ex, ex.default_profile(), "age", "survival")
    assert "<svg" in figure and "nan" not in figure.lower() and "gives no interval" in figure


# --------------------------------------------------------------------------------------------------
# The cheap models against references


def _exponential_arm(n, beta, rate, rng):
    x = rng.normal(size=(n, 2))
    t = rng.exponential(1 / (rate * np.exp(x @ beta)))
    c = rng.exponential(1 / (0.3 * rate), size=n)
    return x, np.minimum(t, c), t <= c


def test_ridge_cox_matches_scikit_survival_and_weights_equal_copies():
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    rng = np.random.default_rng(3)
    x, t, d = _exponential_arm(300, np.array([0.7, -0.4]), 0.1, rng)
    t = np.round(t, 1) + 0.1  # ties, handled the Breslow way by both
    beta, times, cum = fit_ridge_cox(x, t, d, penalty=2.0)
    ref = CoxPHSurvivalAnalysis(alpha=2.0, ties="breslow").fit(x, Surv.from_arrays(d, t))
    # same penalized objective, both solved by Newton to ~1e-9
    np.testing.assert_allclose(beta, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(
        np.interp(times, ref.cum_baseline_hazard_.x, ref.cum_baseline_hazard_.y), cum, rtol=1e-6
    )
    w = rng.integers(0, 3, size=len(t)).astype(float)
    rows = np.repeat(np.arange(len(t)), w.astype(int))
    b_w, _, cum_w = fit_ridge_cox(x, t, d, w, penalty=2.0)
    b_c, _, cum_c = fit_ridge_cox(x[rows], t[rows], d[rows], penalty=2.0)
    np.testing.assert_allclose(b_w, b_c, atol=1e-10)
    np.testing.assert_allclose(cum_w, cum_c, atol=1e-10)


def test_ridge_logistic_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 3))
    y = (rng.random(400) < 1 / (1 + np.exp(-(x @ [1.0, -0.5, 0.0] - 0.3)))).astype(float)
    coef = fit_ridge_logistic(x, y, penalty=2.0)
    ref = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(x, y)
    np.testing.assert_allclose(coef, [ref.intercept_[0], *ref.coef_[0]], atol=1e-5)


def test_cox_ensemble_recovers_known_exponential_survival():
    """Per-arm exponential truth: S(t|x) = exp(-rate_a e^{x b_a} t). The full fit is within 0.04
    of the truth at n = 800 per arm (sampling error ~0.02) and the 95% band covers it."""
    rng = np.random.default_rng(5)
    arms = {1: (np.array([0.5, 0.0]), 0.05), 0: (np.array([0.0, -0.5]), 0.08)}
    parts = [_exponential_arm(800, b, r, rng) for b, r in arms.values()]
    X = np.vstack([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    d = np.concatenate([p[2] for p in parts])
    w = np.repeat([1, 0], 800)
    grid = np.linspace(0, 12, 25)
    ens = fit_cox_ensemble(X, t, d, w, grid, n_bootstrap=100, penalty=1e-3, seed=1)
    x0 = np.array([[0.3, -0.2]])
    for arm, code in (("cart", 1), ("tec", 0)):
        b, r = arms[code]
        truth = np.exp(-r * math.exp(float((x0 @ b)[0])) * grid)
        point, lower, upper = percentile_band(ens.survival(x0, arm)[:, 0, :], 0.05)
        assert np.max(np.abs(point - truth)) < 0.04
        assert np.mean((lower <= truth) & (truth <= upper)) >= 0.9


def test_standardizer_leaves_constant_columns_finite():
    X = np.column_stack([np.arange(5.0), np.ones(5)])
    Z = Standardizer.fit(X)(X)
    assert np.isfinite(Z).all() and np.allclose(Z[:, 1], 0)


def test_fields_and_encoding_of_a_cohort_with_missing_values():
    """Covariates with missing values (median-imputed with an indicator): fields come from the
    observed values, and a complete profile encodes with indicator 0 exactly as the encoder does."""
    from hte.data.simulate import simulate_cohort
    from hte.design.design_matrix import build_design_matrix
    from hte.pipeline.profile_fields import (
        build_fields,
        coerce_profile,
        profile_frame,
        typical_profile,
    )

    cohort = simulate_cohort(300, seed=2)
    cohort.loc[::7, "crp"] = np.nan
    cohort.loc[::7, "ferritin"] = np.nan  # missing together with crp: one shared indicator
    cohort.loc[::11, "race"] = None
    cohort["ldh_high"] = cohort["ldh_high"].astype(object)
    cohort.loc[::13, "ldh_high"] = None
    encoder = build_design_matrix(cohort, impute="median").encoder
    fields = build_fields(cohort, encoder)
    crp = next(f for f in fields if f.name == "crp")
    assert crp.minimum == cohort["crp"].min() and crp.maximum == cohort["crp"].max()
    profile = typical_profile(fields, cohort)
    assert profile["crp"] == round(cohort["crp"].median(), 1)
    row = profile_frame(fields, profile)
    encoded = encode_row(encoder, profile)
    np.testing.assert_array_equal(encoded, encoder.transform(row).to_numpy(float))
    names = list(encoder.feature_names_)
    (shared,) = [ind for ind, cols in encoder.shared_indicators_.items() if "crp" in cols]
    assert set(encoder.shared_indicators_[shared]) == {"crp", "ferritin"}
    assert encoded[0, names.index(shared)] == 0 and "crp_missing" not in names
    # "unknown" takes the design's missing-value path: the fill value with its indicator 1,
    # exactly as the encoder treats a patient without the value; fields without one refuse it
    assert crp.missing_allowed and not next(f for f in fields if f.name == "age").missing_allowed
    unknown = {**profile, "crp": None, "race": None, "ldh_high": None}
    row, _ = coerce_profile(fields, profile, {"crp": None, "race": "unknown", "ldh_high": None})
    assert row == unknown
    np.testing.assert_array_equal(
        encode_row(encoder, unknown),
        encoder.transform(profile_frame(fields, unknown)).to_numpy(float),
    )
    assert encode_row(encoder, unknown)[0, names.index(shared)] == 1
    with pytest.raises(ProfileError, match="age: is unknown"):
        coerce_profile(fields, profile, {"age": None})


def _with_choice(explorer: ProfileExplorer, target: str, choice) -> ProfileExplorer:
    """A copy of the explorer whose ``target`` source carries a held-out model choice."""
    import dataclasses

    from hte.pipeline.profile_bundle import _choose_source

    bundle = explorer.bundle
    source = bundle.sources[target]
    fake_fit = type("Fit", (), {})()
    fake_fit.estimator, fake_fit.kind, fake_fit.target = source.estimator, source.kind, target
    fake_fit.model, fake_fit.error, fake_fit.horizon = explorer.models[target], None, source.horizon
    fake_fit.key = f"{source.estimator}__{target}"
    fake_fit.estimate = explorer.models[target].estimate(
        bundle.encoder.transform(pd.DataFrame([explorer.validate(bundle.default).iloc[0]]))
    )
    new = _choose_source([fake_fit], target, (source.kind,), bundle.analysis, None, choice)
    sources = {**bundle.sources, target: dataclasses.replace(new, fast=source.fast)}
    return ProfileExplorer(dataclasses.replace(bundle, sources=sources), explorer.models)


def test_a_constant_choice_shows_the_average_effect_and_says_so(explorer):
    from hte.pipeline.model_choice import ModelChoice

    choice = ModelChoice(
        "survival",
        "constant",
        "no learner beats the constant",
        (0.1, 0.02, 0.18),
        (),
        ((0.1, 0.02, 0.18, 400),),
        0.05,
    )
    ex = _with_choice(explorer, "survival", choice)
    for profile in [ex.default_profile(), *ex.examples().values()]:
        out = ex.effects(profile)
        assert (
            out.survival_difference.value,
            out.survival_difference.lower,
            out.survival_difference.upper,
        ) == (0.1, 0.02, 0.18)
        assert out.survival_difference.source == "average effect (DR)"
        assert "survival: this cohort does not support individual differences" in out.summary
        assert out.patients_like_this["survival"]["n_groups"] == 1
        assert "average effect" in out.notes["survival_difference"]
    sweep = ex.what_moves_it(ex.default_profile(), "age", "survival", n_points=5)
    assert np.all(sweep["effect"] == 0.1)
    # the other targets keep their estimator
    assert ex.effects(ex.default_profile()).crs_difference.source == "crs_causal_forest"


def test_a_chosen_model_places_the_profile_in_its_benefit_group(explorer):
    from hte.pipeline.model_choice import ModelChoice

    groups = tuple((g / 10, g / 10 - 0.05, g / 10 + 0.05, 80) for g in range(5))
    cuts = (-0.5, -0.1, 0.1, 0.5)
    source = explorer.bundle.sources["survival"]
    choice = ModelChoice(
        "survival", source.estimator, "lowest held-out DR loss", (0.1, 0, 0.2), cuts, groups, 0.05
    )
    ex = _with_choice(explorer, "survival", choice)
    out = ex.effects(ex.default_profile())
    like = out.patients_like_this["survival"]
    k = int(np.searchsorted(cuts, out.survival_difference.value))
    assert like["group"] == k + 1 and like["estimate"] == groups[k][0]
    assert out.survival_difference.source == source.estimator
    assert "lowest held-out DR loss" in out.notes["survival_difference"]


# --------------------------------------------------------------------------------------------------
# One coherent answer per profile (issue 14): every number agrees with the shown effect


def _coherence_profiles(explorer, cohort, n_random: int = 120) -> list[dict]:
    """Random profiles over the fields' 1st-99th percentiles (implausible combinations
    included), cohort patients, the examples and the all-extremes profile."""
    from benchmarks.profile_latency import random_profile

    rng = np.random.default_rng(5)
    out = [random_profile(explorer.fields(), rng) for _ in range(n_random)]
    out += [_profile(explorer, cohort.iloc[i]) for i in range(0, 400, 20)]
    out += [*explorer.examples().values(), _extreme_profile(explorer)]
    return out


def _extreme_profile(explorer) -> dict:
    """Oldest, ECOG 4, lowest CrCl, highest ferritin and CRP the form accepts."""
    fields = {f.name: f for f in explorer.fields()}
    profile = explorer.default_profile()
    for name, end in (
        ("age", "maximum"),
        ("ecog", "maximum"),
        ("crcl", "minimum"),
        ("ferritin", "maximum"),
        ("crp", "maximum"),
    ):
        if name in fields:
            f = fields[name]
            profile[name] = 4 if name == "ecog" else getattr(f, end)
    return profile


def _assert_coherent(explorer, out, profile) -> None:
    from hte.pipeline.profile_arms import restricted_mean

    h, hr = out.survival_horizon, out.rmst_horizon
    times = np.asarray(out.curves["times"])
    cart, tec = (np.asarray(out.curves[a]["survival"]) for a in ("cart", "tec"))
    k = int(np.argmin(np.abs(times - h)))
    # survival at the horizon: per-arm values, curves and the headline effect agree (sign too)
    d = out.survival_cart.value - out.survival_tec.value
    assert d == pytest.approx(out.survival_difference.value, abs=1e-9)
    assert np.sign(round(d, 9)) == np.sign(round(out.survival_difference.value, 9))
    assert cart[k] == pytest.approx(out.survival_cart.value, abs=1e-9)
    assert tec[k] == pytest.approx(out.survival_tec.value, abs=1e-9)
    # RMST: the area between the drawn curves is the RMST effect shown
    area = restricted_mean(times, cart, hr) - restricted_mean(times, tec, hr)
    assert out.coherence["rmst_matched"]
    assert area == pytest.approx(out.rmst_difference.value, abs=1e-6)
    assert out.rmst_cart.value - out.rmst_tec.value == pytest.approx(area, abs=1e-9)
    # CRS: per-arm risks differ by the CRS effect
    for diff, a, b in (
        (out.crs_difference, out.crs_cart, out.crs_tec),
        (out.crs_g3_difference, out.crs_g3_cart, out.crs_g3_tec),
    ):
        if diff is not None and a is not None:
            assert a.value - b.value == pytest.approx(diff.value, abs=1e-9)
            assert 0 <= a.value <= 1 and 0 <= b.value <= 1
    # icon arrays and sentence: the rounded per-arm numbers (so within one icon of the effect)
    icons = out.icon_counts
    alive = icons["survival"]["cart"]["alive"] - icons["survival"]["tec"]["alive"]
    assert abs(alive - 100 * out.survival_difference.value) <= 1.0 + 1e-9
    more = icons["crs"]["cart"]["crs"] - icons["crs"]["tec"]["crs"]
    assert abs(more - 100 * out.crs_difference.value) <= 1.0 + 1e-9
    a, b = icons["survival"]["cart"]["alive"], icons["survival"]["tec"]["alive"]
    assert f"about {a} would be alive at {h:g} months with CAR-T and {b}" in out.summary
    # bands hold their values, curves stay curves
    for est in (out.survival_cart, out.survival_tec, out.crs_cart, out.crs_tec):
        assert est.lower <= est.value <= est.upper
    for curve in (cart, tec):
        assert curve[0] == pytest.approx(1.0) and np.all(np.diff(curve) <= 1e-12)
    # the waterfall of each effect ends at the card's value
    for target, est in (("survival", out.survival_difference), ("crs", out.crs_difference)):
        w = explorer.waterfall(profile, target)
        total = w["base_value"] + sum(c["contribution"] for c in w["contributions"])
        assert total + w["approximation"] == pytest.approx(est.value, abs=1e-9)


def test_one_coherent_answer_over_many_profiles(run, explorer):
    """>= 100 profiles: headline, per-arm numbers, curves, RMST area, icons, sentence and
    waterfall agree in sign and value, although the prognosis model alone often disagrees."""
    _, cohort, _ = run
    profiles = _coherence_profiles(explorer, cohort)
    assert len(profiles) >= 100
    disagreed = 0
    for profile in profiles:
        out = explorer.effects(profile)
        _assert_coherent(explorer, out, profile)
        own = out.coherence["prognosis_model"]["survival"]
        disagreed += np.sign(own["cart"] - own["tec"]) != np.sign(out.survival_difference.value)
    # the test has teeth: without the adjustment some answers would contradict themselves
    assert disagreed > 0


def test_a_constant_choice_is_coherent_too(explorer, run):
    """With the average effect shown, the per-arm numbers agree with it (and say what the
    prognosis model alone gave); the waterfall has nothing to attribute."""
    from hte.pipeline.model_choice import ModelChoice

    ex = explorer
    for target, value in (
        ("survival", (0.1, 0.02, 0.18)),
        ("rmst", (1.5, 0.2, 2.8)),
        ("crs", (0.2, 0.1, 0.3)),
    ):
        choice = ModelChoice(
            target, "constant", "no learner beats the constant", value, (), ((*value, 400),), 0.05
        )
        ex = _with_choice(ex, target, choice)
    _, cohort, _ = run
    for profile in _coherence_profiles(ex, cohort, n_random=20):
        out = ex.effects(profile)
        assert out.survival_difference.value == 0.1 and out.crs_difference.value == 0.2
        _assert_coherent(ex, out, profile)
        w = ex.waterfall(profile, "survival")
        assert w["contributions"] == [] and w["base_value"] == w["total"] == 0.1


def test_split_difference_is_the_closest_pair_with_that_difference():
    from hte.pipeline.profile_arms import split_difference

    s = split_difference(0.6, 0.5, 0.3)  # move each by 0.1: the least-squares answer
    assert (s.cart, s.tec, s.feasible) == (pytest.approx(0.7), pytest.approx(0.4), True)
    s = split_difference(0.0, 0.0, 0.105)  # both arms dead: the bound holds teclistamab at 0
    assert (s.cart, s.tec) == (pytest.approx(0.105), 0.0)
    s = split_difference(0.2, 0.9, 0.0)
    assert s.cart == s.tec == pytest.approx(0.55)
    rng = np.random.default_rng(0)
    for _ in range(200):  # against brute force over the feasible segment
        p1, p0, d = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(-0.9, 0.9)
        q0 = np.linspace(max(0, -d), min(1, 1 - d), 20001)
        best = q0[np.argmin((q0 + d - p1) ** 2 + (q0 - p0) ** 2)]
        s = split_difference(p1, p0, d)
        assert s.tec == pytest.approx(best, abs=1e-4) and s.cart - s.tec == pytest.approx(d)
    assert not split_difference(0.5, 0.5, 0.3, (0.0, 0.6), (0.4, 1.0)).feasible


def test_matched_exponential_curves_reach_both_targets():
    """Exponential prognosis curves (hazards 0.05 and 0.08 per month): the scaled curves pass
    through the adjusted 12-month survival and their RMST difference to 24 months is the target;
    a target the curves already meet leaves them unchanged."""
    from hte.pipeline.profile_arms import match_curves, restricted_mean

    grid = np.arange(0, 36.01, 0.5)
    cart, tec = np.exp(-0.05 * grid), np.exp(-0.08 * grid)
    k = list(grid).index(12.0)
    same = match_curves(
        grid,
        cart,
        tec,
        12.0,
        cart[k] - tec[k],
        24.0,
        restricted_mean(grid, cart, 24) - restricted_mean(grid, tec, 24),
    )
    for arm, curve in (("cart", cart), ("tec", tec)):
        np.testing.assert_allclose(same.scales[arm].apply(grid, curve), curve, atol=1e-9)
    for d_surv, d_rmst in ((-0.05, -0.5), (0.2, 1.0), (0.0, 2.5), (0.3, -1.0)):
        m = match_curves(grid, cart, tec, 12.0, d_surv, 24.0, d_rmst)
        c1 = m.scales["cart"].apply(grid, cart)
        c0 = m.scales["tec"].apply(grid, tec)
        assert c1[k] - c0[k] == pytest.approx(d_surv, abs=1e-9)
        assert m.rmst_matched
        area = restricted_mean(grid, c1, 24) - restricted_mean(grid, c0, 24)
        assert area == pytest.approx(d_rmst, abs=1e-6)
        for c in (c1, c0):
            assert c[0] == pytest.approx(1.0) and np.all(np.diff(c) <= 1e-12)


def test_each_area_search_reaches_its_target():
    """Weibull-like curves and reachable RMST targets: the hazard scale after the knot (k2),
    the shape before it (gamma, when k2 alone cannot reach) and one scale without a knot each
    give the target area to 1e-9 months, and the curve keeps its value at the knot."""
    from hte.pipeline.profile_arms import (
        _area_range,
        _solve_after_knot,
        _solve_k1_area,
        restricted_mean,
    )

    grid = np.arange(0, 36.01, 0.5)
    k = list(grid).index(12.0)
    rng = np.random.default_rng(5)
    paths = set()
    for _ in range(60):
        shape, rate = rng.uniform(0.5, 2.0), rng.uniform(0.01, 0.2)
        curve = np.exp(-((rate * grid) ** shape))
        low, high = _area_range(grid, curve, 1.0, 12.0, 24.0)
        target = rng.uniform(low + 1e-6, high - 1e-6)
        scale = _solve_after_knot(grid, curve, 1.0, 12.0, 24.0, target)
        scaled = scale.apply(grid, curve)
        assert restricted_mean(grid, scaled, 24.0) == pytest.approx(target, abs=1e-9)
        assert scaled[k] == pytest.approx(curve[k], abs=1e-12)
        paths.add("gamma" if scale.gamma != 1.0 else "k2")
        target = rng.uniform(0.6, 0.99) * 24.0  # below the area of S = 1 (scale 0)
        k1 = _solve_k1_area(grid, curve, 24.0, target)
        scaled = np.exp(-k1 * -np.log(np.clip(curve, 1e-12, 1.0)))
        assert restricted_mean(grid, scaled, 24.0) == pytest.approx(target, abs=1e-9)
    assert paths == {"k2", "gamma"}


# --------------------------------------------------------------------------------------------------
# Support on the joint profile (issue 14)


def test_the_all_extremes_profile_is_unlike_either_arm(explorer):
    out = explorer.effects(_extreme_profile(explorer))
    text = " ".join(out.warnings)
    assert "No patient treated with CAR-T or teclistamab in the cohort had this combination" in text
    assert out.low_overlap
    for arm in ("cart", "tec"):
        detail = out.joint_support[arm]
        assert detail["distance"] > detail["threshold"] and not detail["supported"]
    # the reason names fields among the ones made extreme
    extreme = {
        "Age",
        "ECOG performance status",
        "Creatinine clearance",
        "Ferritin",
        "C-reactive protein",
    }
    assert set(out.joint_support["cart"]["differs_most_in"]) & extreme


def test_typical_profiles_and_most_cohort_patients_are_supported(run, explorer):
    _, cohort, _ = run
    for profile in [explorer.default_profile(), *explorer.examples().values()]:
        out = explorer.effects(profile)
        assert all(d["supported"] for d in out.joint_support.values()), out.joint_support
        assert not any("combination" in w for w in out.warnings)
    flagged = [
        not all(
            d["supported"] for d in explorer.effects(_profile(explorer, row)).joint_support.values()
        )
        for _, row in cohort.iloc[::4].iterrows()
    ]
    # thresholds are the cohort's own 99th percentiles (leave-one-out), per arm
    assert np.mean(flagged) <= 0.04


def test_joint_support_flags_a_combination_seen_in_one_arm_only():
    """Two covariates, each value seen in both arms, but the combination (high, high) only under
    teclistamab: flagged for CAR-T alone, with the reason; (low, low) is supported."""
    from hte.pipeline.profile_support import fit_joint_support, support_flags

    rng = np.random.default_rng(1)
    n = 600
    w = rng.integers(0, 2, n)
    a = rng.normal(0, 1, n)
    b = np.where(w == 1, -np.abs(rng.normal(0, 1, n)) * np.sign(a), rng.normal(0, 1, n))
    X = np.column_stack([a, b, rng.integers(0, 2, n)])
    support = fit_joint_support(X, w, ["a", "b", "flag"])
    hi_hi = np.array([2.0, 2.0, 0.0])
    flags, detail = support_flags(support, hi_hi, {}, {"a": "Alpha", "b": "Beta"})
    assert not detail["cart"]["supported"] and detail["tec"]["supported"]
    assert flags and "treated with CAR-T in the cohort" in flags[0]
    assert set(detail["cart"]["differs_most_in"][:2]) == {"Alpha", "Beta"}
    flags, detail = support_flags(support, np.array([0.1, -0.1, 1.0]), {}, {})
    assert not flags and all(d["supported"] for d in detail.values())
