"""hte.explain attributions and plots: additivity, recovery of the features that drive a known CATE,
honest surrogate fidelity, non-empty figures and clear errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingRegressor

from hte.explain import plots
from hte.explain.attributions import (
    explain_arm_risk,
    explain_cate,
    explain_function,
    global_importance,
)

# Additivity of TreeSHAP / KernelSHAP is an identity up to float rounding; 1e-6 leaves room for
# summing 5-21 float64 terms of size ~1 and nothing more.
ADDITIVITY_TOL = 1e-6
SMALL_SURROGATE = GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0)


def _X(n: int = 300, p: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, p)), columns=[f"x{j}" for j in range(p)])


class StepCate:
    """CATE depends only on x0 and x1, as axis-aligned steps (what trees represent exactly)."""

    def predict(self, X):
        a = np.asarray(X, dtype=float)
        return 1.0 * (a[:, 0] > 0) + 0.5 * (a[:, 1] > 0.5)


class SmoothCate:
    """CATE depends only on x0 (strongly) and x1 (less), smoothly."""

    def predict(self, X):
        a = np.asarray(X, dtype=float)
        return 2.0 * a[:, 0] + np.tanh(a[:, 1])


class RoughCate:
    """High-frequency interaction no shallow surrogate can learn from 300 patients."""

    def predict(self, X):
        a = np.asarray(X, dtype=float)
        return np.sin(25.0 * a[:, 2] * a[:, 3]) + 0.3 * a[:, 0]


@pytest.fixture(scope="module")
def step_attr():
    return explain_cate(StepCate(), _X(), random_state=0, surrogate=SMALL_SURROGATE)


def test_surrogate_additivity_and_fields(step_attr):
    X = _X()
    a = step_attr
    assert a.method == "surrogate"
    assert a.values.shape == X.shape
    np.testing.assert_allclose(a.base_value + a.values.sum(1), a.effect, atol=ADDITIVITY_TOL)
    np.testing.assert_array_equal(a.model_effect, StepCate().predict(X))
    assert a.feature_names == list(X.columns)
    assert "fidelity R^2" in a.fidelity_text


def test_kernel_is_additive_to_the_model_itself():
    X = _X(60)
    a = explain_cate(SmoothCate(), X.iloc[:4], method="kernel", background=X, random_state=0)
    assert a.method == "kernel" and a.surrogate_r2 is None
    np.testing.assert_allclose(a.effect, SmoothCate().predict(X.iloc[:4]))
    np.testing.assert_allclose(a.base_value + a.values.sum(1), a.effect, atol=ADDITIVITY_TOL)


def test_tree_model_is_explained_exactly_with_or_without_background():
    X = _X()
    model = GradientBoostingRegressor(n_estimators=50, max_depth=3, random_state=0)
    model.fit(X, SmoothCate().predict(X))
    for bg in (None, X.iloc[:50]):
        a = explain_cate(model, X, background=bg, random_state=0)
        assert a.method == "tree" and a.surrogate_r2 is None
        np.testing.assert_allclose(a.effect, model.predict(X))
        np.testing.assert_allclose(a.base_value + a.values.sum(1), a.effect, atol=ADDITIVITY_TOL)


def test_surrogate_with_background_is_additive():
    X = _X()
    a = explain_cate(
        SmoothCate(), X, background=X, max_background=40, random_state=0, surrogate=SMALL_SURROGATE
    )
    np.testing.assert_allclose(a.base_value + a.values.sum(1), a.effect, atol=ADDITIVITY_TOL)


@pytest.mark.parametrize("stub", [StepCate(), SmoothCate()])
def test_top_two_features_are_the_ones_the_cate_depends_on(stub):
    a = explain_cate(stub, _X(), random_state=1, surrogate=SMALL_SURROGATE)
    imp = global_importance(a)
    assert set(imp.index[:2]) == {"x0", "x1"}
    # noise features get (almost) nothing: under 5% of the weakest true driver
    assert imp.iloc[2:].max() < 0.05 * imp.iloc[1]
    np.testing.assert_allclose(imp.to_numpy(), np.sort(np.abs(a.values).mean(0))[::-1])


def test_fidelity_near_one_for_tree_like_cate(step_attr):
    # steps at fixed thresholds are exactly tree-representable; CV R^2 loses only the few
    # patients near a threshold, so 0.95 is a safe floor
    assert step_attr.surrogate_r2 > 0.95
    assert step_attr.surrogate_r2_in_sample > 0.99


def test_fidelity_reported_honestly_below_one_for_rough_cate():
    a = explain_cate(RoughCate(), _X(), random_state=0, surrogate=SMALL_SURROGATE)
    # the sin(25 x2 x3) part is ~80% of the variance and not learnable out of sample
    assert a.surrogate_r2 < 0.6
    assert a.surrogate_r2 < a.surrogate_r2_in_sample
    assert f"{a.surrogate_r2:.3f}" in a.fidelity_text


def test_constant_cate_has_zero_attributions():
    class Constant:
        def predict(self, X):
            return np.full(len(X), 0.2)

    a = explain_cate(Constant(), _X(100), random_state=0, surrogate=SMALL_SURROGATE)
    np.testing.assert_allclose(a.values, 0.0, atol=1e-12)
    assert "constant" in a.note


class ArmRisks:
    """Per-arm risks: CAR-T driven by x0, teclistamab by x2."""

    n_features_in_ = 5

    def predict_risk(self, X):
        a = np.asarray(X, dtype=float)
        return 1 / (1 + np.exp(-a[:, 0])), 1 / (1 + np.exp(-a[:, 2]))


class ArmSurvival:
    horizon_ = 12.0

    def predict_survival(self, X, times):
        a = np.asarray(X, dtype=float)
        s1 = np.exp(-np.exp(a[:, 1])[:, None] * times[None, :] / 12)
        s0 = np.exp(-np.exp(a[:, 3])[:, None] * times[None, :] / 12)
        return type("C", (), {"surv_cart": s1, "surv_tec": s0})()


@pytest.mark.parametrize(
    ("model", "arm", "driver"),
    [(ArmRisks(), "cart", "x0"), (ArmRisks(), "tec", "x2"), (ArmSurvival(), "tec", "x3")],
)
def test_arm_risk_attributions(model, arm, driver):
    a = explain_arm_risk(model, _X(), arm, random_state=0, surrogate=SMALL_SURROGATE)
    assert arm in a.label
    assert global_importance(a).index[0] == driver
    np.testing.assert_allclose(a.base_value + a.values.sum(1), a.effect, atol=ADDITIVITY_TOL)


def test_plots_write_non_empty_pngs_with_fidelity_footnote(step_attr, tmp_path):
    figs = {
        "beeswarm": plots.plot_beeswarm(step_attr, path=tmp_path / "beeswarm.png"),
        "importance": plots.plot_importance(step_attr, path=tmp_path / "importance.png"),
        "dependence": plots.plot_dependence(step_attr, "x0", path=tmp_path / "dependence.png"),
        "dependence_plain": plots.plot_dependence(
            step_attr, "x1", color_by=None, path=tmp_path / "dependence_plain.png"
        ),
        "waterfall": plots.plot_waterfall(
            step_attr, 3, max_display=2, path=tmp_path / "waterfall.png"
        ),
    }
    for name, fig in figs.items():
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
        assert any("surrogate fidelity R^2" in t.get_text() for t in fig.texts), name


def test_waterfall_bars_end_at_the_effect(step_attr):
    fig = plots.plot_waterfall(step_attr, 7, max_display=2)
    bars = fig.axes[0].patches
    # base + 2 shown features + "3 other features" bar: the last bar ends at the effect shown
    assert len(bars) == 3
    end = bars[-1].get_x() + bars[-1].get_width()
    assert end == pytest.approx(step_attr.effect[7], abs=ADDITIVITY_TOL)


def test_real_crs_forest_end_to_end():
    from hte.estimators import CRSCausalForest

    X = _X(400, 4, seed=3)
    rng = np.random.default_rng(3)
    w = rng.integers(0, 2, 400)
    crs = rng.random(400) < 0.2 + 0.3 * w * (X["x0"].to_numpy() > 0)
    model = CRSCausalForest(n_estimators=40, cv=2, random_state=0, n_jobs=1).fit(X, crs, w)
    a = explain_cate(model, X, random_state=0, surrogate=SMALL_SURROGATE)
    np.testing.assert_allclose(a.model_effect, model.predict(X))
    np.testing.assert_allclose(a.base_value + a.values.sum(1), a.effect, atol=ADDITIVITY_TOL)
    with pytest.raises(ValueError, match=r"missing \['x0'\]"):
        explain_cate(model, X.rename(columns={"x0": "age"}))


def test_clear_errors():
    X = _X(50)
    with pytest.raises(TypeError, match="no predict"):
        explain_cate(object(), X)
    with pytest.raises(TypeError, match="DataFrame"):
        explain_cate(StepCate(), X.to_numpy())
    bad = X.copy()
    bad.iloc[[4, 9], 2] = np.nan
    with pytest.raises(ValueError, match=r"columns \['x2'\].*rows \[4, 9\]"):
        explain_cate(StepCate(), bad)
    with pytest.raises(ValueError, match="method"):
        explain_cate(StepCate(), X, method="deep")
    with pytest.raises(ValueError, match="expects 5"):
        explain_arm_risk(ArmRisks(), X.iloc[:, :4])
    with pytest.raises(ValueError, match="arm"):
        explain_arm_risk(ArmRisks(), X, "placebo")
    with pytest.raises(TypeError, match="predict_risk"):
        explain_arm_risk(StepCate(), X)
    with pytest.raises(ValueError, match="shape"):
        explain_function(lambda d: np.zeros(3), X)
    with pytest.raises(ValueError, match="same columns"):
        explain_cate(StepCate(), X, background=X[X.columns[::-1]], method="kernel")
    with pytest.raises(ValueError, match="not among"):
        plots.plot_dependence(explain_cate(StepCate(), X, surrogate=SMALL_SURROGATE, cv=2), "age")


def test_default_surrogate_is_exact_deterministic_and_finds_the_drivers():
    """The default (LightGBM) surrogate: TreeSHAP additive to it, the same numbers for the same
    seed (metrics.json must be byte-identical), the step CATE learned (CV R^2 > 0.95, as the
    smaller sklearn surrogate above) and its two drivers ranked first, noise under 5% of them."""
    X = _X()
    a = explain_cate(StepCate(), X, random_state=0)
    b = explain_cate(StepCate(), X, random_state=0)
    assert a.method == "surrogate"
    np.testing.assert_allclose(a.base_value + a.values.sum(1), a.effect, atol=ADDITIVITY_TOL)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.surrogate_r2 == b.surrogate_r2 > 0.95
    imp = global_importance(a)
    assert list(imp.index[:2]) == ["x0", "x1"]
    assert imp.iloc[2:].max() < 0.05 * imp.iloc[1]
