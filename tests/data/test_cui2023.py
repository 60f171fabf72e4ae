"""The Cui et al. 2023 designs: closed-form truth against Monte Carlo, and the drawn data's shape."""

import numpy as np
import pytest

from hte.data.cui2023 import DGPS, HORIZON, generate_cui2023, true_cate, true_cate_mc


@pytest.mark.parametrize("dgp", DGPS)
def test_closed_form_rmst_cate_matches_monte_carlo(dgp):
    X = np.random.default_rng(3).uniform(size=(6, 5))
    exact = true_cate(X, dgp)
    mc = true_cate_mc(X, dgp, n_mc=40_000, seed=1)
    # MC standard error of a mean of min(T, h) differences is at most h / sqrt(n_mc) (bounded
    # outcome in [-h, h]); 4 SE keeps the test from failing by chance across 24 comparisons.
    tol = 4 * HORIZON[dgp] / np.sqrt(40_000)
    assert np.max(np.abs(exact - mc)) < tol


@pytest.mark.parametrize("dgp", DGPS)
def test_draw_is_valid_and_truth_has_heterogeneity(dgp):
    d = generate_cui2023(3000, 5, dgp, seed=2)
    assert d.X.shape == (3000, 5)
    assert (d.time >= 0).all() and (d.time <= d.horizon).all()  # zeros kept, as grf draws them
    assert (d.with_day_zero().time > 0).all()
    assert set(np.unique(d.event)) <= {0, 1} and set(np.unique(d.treatment)) == {0, 1}
    assert 0.02 < 1 - d.event.mean() < 0.5  # some, not overwhelming, censoring
    assert d.cate_rmst.std() > 0.05 and np.isfinite(d.cate_survival).all()
    assert ((d.propensity > 0.05) & (d.propensity < 0.95)).all()


def test_type2_effect_sign_follows_x2():
    X = np.full((2, 5), 0.5)
    X[:, 1] = [0.1, 0.9]  # hazard ratio exp(X2 - 0.5): treatment helps when X2 < 0.5
    tau = true_cate(X, "type2")
    assert tau[0] > 0 > tau[1]


def test_seed_reproducible_and_bad_dgp_rejected():
    a, b = generate_cui2023(50, 5, "type3", seed=7), generate_cui2023(50, 5, "type3", seed=7)
    assert np.array_equal(a.time, b.time) and np.array_equal(a.treatment, b.treatment)
    with pytest.raises(ValueError, match="dgp"):
        generate_cui2023(10, 5, "type9")
    with pytest.raises(ValueError, match="p >= 5"):
        generate_cui2023(10, 3, "type1")
