"""TOC curve with a pointwise bootstrap band (``toc_band``) against a closed-form TOC, and
stratified folds of ``cross_fitted_priorities``."""

from __future__ import annotations

import numpy as np
import pytest

from hte.evaluation.rate import cross_fitted_priorities, toc_band, toc_curve


def _uniform_effects(n: int, rng):
    """tau ~ U(0, 1) ranked by itself: TOC(q) = E[tau | tau > 1 - q] - 1/2 = (1 - q) / 2."""
    tau = rng.random(n)
    return tau, tau + rng.normal(scale=1.0, size=n)


def test_band_is_centred_on_the_curve_and_covers_the_closed_form_toc():
    rng = np.random.default_rng(0)
    tau, scores = _uniform_effects(2000, rng)
    band = toc_band(tau, scores, n_bootstrap=200, random_state=1)
    np.testing.assert_allclose(band.q, np.arange(1, 21) / 20)
    # the curve itself is toc_curve read on the grid
    np.testing.assert_allclose(band.toc, toc_curve(tau, scores, band.q)[1], rtol=0, atol=1e-12)
    assert band.toc[-1] == pytest.approx(0.0, abs=1e-12) and band.std_err[-1] < 1e-12
    truth = (1 - band.q) / 2
    # 4 bootstrap SEs at each of 19 points: a correct band fails this with probability < 0.2%
    inner = slice(0, 19)
    assert np.all(np.abs(band.toc[inner] - truth[inner]) < 4 * band.std_err[inner])
    np.testing.assert_allclose(band.lower, band.toc - 1.959964 * band.std_err, rtol=1e-5)
    np.testing.assert_allclose(band.upper, band.toc + 1.959964 * band.std_err, rtol=1e-5)


def test_bootstrap_se_matches_the_spread_over_fresh_samples():
    # 200 fresh samples give the true sampling SD of TOC(q) to about +-10% (SD of an SD estimate
    # from 200 draws is ~5%); the bootstrap SE of one sample should agree within 35%
    rng = np.random.default_rng(3)
    q = np.array([0.1, 0.3, 0.5])
    draws = np.array([toc_curve(*_uniform_effects(500, rng), q)[1] for _ in range(200)])
    band = toc_band(*_uniform_effects(500, rng), q, n_bootstrap=300, random_state=4)
    ratio = band.std_err / draws.std(axis=0, ddof=1)
    assert np.all((ratio > 0.65) & (ratio < 1.35)), ratio


def test_toc_band_rejects_bad_input():
    with pytest.raises(ValueError, match="grid"):
        toc_band([1.0, 2.0, 3.0], [1.0, 0.0, 1.0], [0.0, 0.5])
    with pytest.raises(ValueError, match="n_bootstrap"):
        toc_band([1.0, 2.0, 3.0], [1.0, 0.0, 1.0], n_bootstrap=1)
    with pytest.raises(ValueError, match="clusters"):
        toc_band([1.0, 2.0, 3.0], [1.0, 0.0, 1.0], clusters=[1, 2])


def test_stratified_folds_keep_each_stratum_in_proportion():
    labels = np.repeat([0, 1, 2, 3], [100, 40, 8, 2])  # a rare stratum of 2 patients
    seen = []

    def fit_predict(train, test):
        seen.append(np.bincount(labels[test], minlength=4))
        return np.zeros(test.size)

    out = cross_fitted_priorities(fit_predict, labels, n_folds=2, random_state=0, stratify=labels)
    assert np.all(out == 0.0)
    for counts in seen:  # each half holds half of every stratum (odd counts: +-1)
        np.testing.assert_array_equal(counts, [50, 20, 4, 1])
    with pytest.raises(ValueError, match="stratify must have shape"):
        cross_fitted_priorities(fit_predict, labels, n_folds=2, stratify=labels[:-1])
