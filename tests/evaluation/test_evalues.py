"""E-values against closed forms and the published examples of VanderWeele & Ding (2017).

E = RR + sqrt(RR (RR - 1)) for RR >= 1 (1/RR first when RR < 1). Values below are worked by hand;
tolerances are the rounding of the hand calculation (2-3 decimals).
"""

import math

import numpy as np
import pytest

from hte.evaluation.average_effects import DRAverage, log_ratio_se
from hte.evaluation.evalues import (
    evalue_hr,
    evalue_point,
    evalue_risk_difference,
    evalue_rr,
    hr_to_rr,
    risk_ratio_from_risks,
)


def test_breastfeeding_example_rr_3_9():
    # RR 3.9: 3.9 + sqrt(3.9 * 2.9) = 3.9 + sqrt(11.31) = 3.9 + 3.363 = 7.26
    # lower limit 1.8: 1.8 + sqrt(1.8 * 0.8) = 1.8 + sqrt(1.44) = 1.8 + 1.2 = 3.0 exactly
    ev = evalue_rr(3.9, 1.8, 8.7)
    assert ev.evalue == pytest.approx(7.26, abs=5e-3)
    assert ev.evalue_ci == pytest.approx(3.0, abs=1e-12)
    assert ev.measure == "RR"


def test_protective_rr_uses_inverse_and_upper_limit():
    # leukaemia example RR 0.80 (0.71, 0.91): 1/0.8 = 1.25 -> 1.25 + sqrt(1.25 * 0.25) = 1.809;
    # the limit closest to 1 is the upper one: 1/0.91 = 1.0989 -> 1.0989 + sqrt(1.0989 * 0.0989)
    # = 1.0989 + 0.3297 = 1.4286
    ev = evalue_rr(0.80, 0.71, 0.91)
    assert ev.evalue == pytest.approx(1.809, abs=1e-3)
    assert ev.evalue_ci == pytest.approx(1.4286, abs=1e-3)
    # symmetry: RR and 1/RR have the same E-value
    assert evalue_point(1 / 0.8) == pytest.approx(ev.evalue, rel=1e-12)


def test_interval_crossing_one_gives_one():
    assert evalue_rr(1.3, 0.9, 1.8).evalue_ci == 1.0
    assert evalue_rr(0.8, 0.6, 1.05).evalue_ci == 1.0
    assert evalue_rr(1.0).evalue == 1.0  # 1 + sqrt(0) = 1
    assert math.isnan(evalue_rr(2.0).evalue_ci)  # no interval, no CI E-value


def test_hammond_holl_smoking_two_by_two():
    # 397 lung cancers among 78,954 smokers, 51 among 108,829 non-smokers: RR = 10.7298 with the
    # Wald log-RR interval 8.0175 to 14.3597 (the EValue package's twoXtwoRR example).
    # E = 10.73 + sqrt(10.73 * 9.73) = 20.95; CI: 8.0175 + sqrt(8.0175 * 7.0175) = 15.52
    p1, p0 = 397 / 78954, 51 / 108829
    rr, lo, hi = risk_ratio_from_risks(p1, p0, n_treated=78954, n_control=108829)
    assert (rr, lo, hi) == pytest.approx((10.729780, 8.017457, 14.359688), rel=1e-5)
    ev = evalue_risk_difference(p1, p0, n_treated=78954, n_control=108829)
    assert ev.evalue == pytest.approx(20.95, abs=0.01)
    assert ev.evalue_ci == pytest.approx(15.52, abs=0.01)
    assert "risk difference" in ev.note


def test_hazard_ratio_rare_and_common():
    # rare: RR ~ HR, so HR 0.56 -> 1/0.56 = 1.7857 -> 1.7857 + sqrt(1.7857 * 0.7857) = 2.970
    assert evalue_hr(0.56, rare=True).evalue == pytest.approx(2.970, abs=1e-3)
    # common: RR = (1 - 0.5^sqrt(0.56)) / (1 - 0.5^sqrt(1/0.56)); sqrt(0.56) = 0.74833,
    # 0.5^0.74833 = 0.59532; sqrt(1/0.56) = 1.33631, 0.5^1.33631 = 0.39605;
    # RR = 0.40468 / 0.60395 = 0.67006 -> 1/RR = 1.49240 -> E = 1.4924 + sqrt(1.4924 * 0.4924)
    # = 1.4924 + 0.8572 = 2.350
    ev = evalue_hr(0.56, 0.46, 0.69, rare=False)
    assert ev.rr == pytest.approx(0.6701, abs=1e-4)
    assert ev.evalue == pytest.approx(2.350, abs=1e-3)
    assert ev.measure == "HR" and ev.estimate == 0.56
    # the CI E-value comes from the upper limit 0.69, converted the same way
    assert ev.evalue_ci == pytest.approx(evalue_point(hr_to_rr(0.69, rare=False)), rel=1e-12)
    # the conversion is milder than treating the HR as a RR, and exact at 1
    assert ev.evalue < evalue_hr(0.56, rare=True).evalue
    assert hr_to_rr(1.0, rare=False) == pytest.approx(1.0, abs=1e-15)


def test_log_ratio_se_complement_is_the_ratio_of_the_complement():
    # death risk from survival scores (complement) equals the risk ratio of 1 - phi directly
    rng = np.random.default_rng(0)
    phi1, phi0 = rng.random(500) < 0.7, rng.random(500) < 0.6

    def dr(a, b):
        a, b = a.astype(float), b.astype(float)
        return DRAverage(float(np.mean(a - b)), 0.0, a.mean(), b.mean(), a.size, a, b, "test")

    assert log_ratio_se(dr(phi1, phi0), complement=True) == pytest.approx(
        log_ratio_se(dr(~phi1, ~phi0)), rel=1e-12
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: evalue_rr(-1.0), "rr must be a finite ratio > 0"),
        (lambda: evalue_rr(2.0, 2.5, 3.0), "interval must contain the estimate"),
        (lambda: evalue_hr(float("nan"), rare=True), "hr must be"),
        (lambda: risk_ratio_from_risks(0.3, 1.2, n_treated=5, n_control=5), "risk_control"),
        (lambda: risk_ratio_from_risks(0.3, 0.2), "give se_log_rr, or n_treated"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
