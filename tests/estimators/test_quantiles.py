"""``linear_quantiles`` is ``np.quantile(..., axis=0)`` to the bit, only faster."""

import numpy as np
import pytest

from hte.estimators.quantiles import linear_quantiles


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40, 200, 201, 1000])
@pytest.mark.parametrize("shape", [(), (1,), (72,), (3, 4)])
def test_equals_numpy_to_the_bit(n, shape):
    rng = np.random.default_rng(n + len(shape))
    x = rng.lognormal(size=(n, *shape))
    x[rng.random(x.shape) < 0.2] = 0.5  # ties
    q = np.array([0.0, 0.005, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.995, 1.0])
    expected = np.quantile(x, q, axis=0)
    got = linear_quantiles(x, q)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_random_levels_equal_numpy():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 400))
        x = rng.normal(size=(n, 5))
        q = rng.random(3)
        assert np.array_equal(linear_quantiles(x, q), np.quantile(x, q, axis=0))


def test_nan_follows_numpy():
    x = np.array([[1.0, 2.0], [np.nan, 3.0], [0.5, 4.0]])
    np.testing.assert_array_equal(linear_quantiles(x, [0.1, 0.9]), np.quantile(x, [0.1, 0.9], 0))
