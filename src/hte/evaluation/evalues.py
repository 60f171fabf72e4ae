"""E-values: how strong an unmeasured confounder would have to be to explain an effect away.

VanderWeele and Ding (2017), "Sensitivity analysis in observational research: introducing the
E-value", Ann Intern Med 167:268-275. For an observed risk ratio RR >= 1,

    E = RR + sqrt(RR (RR - 1))

is the minimum strength of association, on the risk-ratio scale, that an unmeasured confounder
would need with both the treatment and the outcome (conditional on the measured covariates) to
move the true risk ratio to 1. A protective RR < 1 is inverted first. For the confidence interval
the same formula is applied to the limit closest to 1; when the interval contains 1 that E-value
is 1 (no confounding is needed to make the interval reach the null).

Other measures are first put on the risk-ratio scale (Table 2 of the paper):

* hazard ratio, rare outcome (< 15% by the end of follow-up): RR ~ HR;
* hazard ratio, common outcome: RR ~ (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) (VanderWeele
  2017/2020, the square-root conversion under proportional hazards);
* risk difference p1 - p0: RR = p1 / p0 with a Wald interval on log RR (a delta-method standard
  error from the caller, or the binomial one from the arm sizes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from scipy import stats

MEASURES = ("RR", "HR")


@dataclass(frozen=True)
class EValue:
    """E-values of one effect: the point estimate and the confidence limit closest to the null.

    ``estimate``/``lower``/``upper`` are on the scale of ``measure`` (a hazard ratio stays a
    hazard ratio); ``rr``/``rr_lower``/``rr_upper`` are the risk ratios the E-values were
    computed from. ``evalue_ci`` is NaN when no interval was given.
    """

    measure: str
    estimate: float
    lower: float
    upper: float
    rr: float
    rr_lower: float
    rr_upper: float
    evalue: float
    evalue_ci: float
    note: str


def _positive(name: str, value) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite ratio > 0; got {value!r}")
    return v


def evalue_point(rr: float) -> float:
    """E-value of one risk ratio: RR + sqrt(RR (RR - 1)), with RR < 1 replaced by 1/RR."""
    r = _positive("rr", rr)
    r = 1.0 / r if r < 1 else r
    return r + math.sqrt(r * (r - 1.0))


def _check_interval(estimate: float, lower, upper) -> tuple[float, float]:
    lo = math.nan if lower is None else _positive("lower", lower)
    hi = math.nan if upper is None else _positive("upper", upper)
    if (math.isfinite(lo) and lo > estimate) or (math.isfinite(hi) and hi < estimate):
        raise ValueError(
            f"the interval must contain the estimate: lower {lo} <= {estimate} <= upper {hi}"
        )
    return lo, hi


def _evalue_ci(rr: float, lo: float, hi: float) -> float:
    """E-value of the confidence limit closest to 1 (1 when the interval contains 1)."""
    if rr >= 1:
        if not math.isfinite(lo):
            return math.nan
        return 1.0 if lo <= 1 else evalue_point(lo)
    if not math.isfinite(hi):
        return math.nan
    return 1.0 if hi >= 1 else evalue_point(hi)


def evalue_rr(rr: float, lower: float | None = None, upper: float | None = None) -> EValue:
    """E-values of a risk ratio and (optionally) its confidence interval."""
    r = _positive("rr", rr)
    lo, hi = _check_interval(r, lower, upper)
    return EValue(
        measure="RR",
        estimate=r,
        lower=lo,
        upper=hi,
        rr=r,
        rr_lower=lo,
        rr_upper=hi,
        evalue=evalue_point(r),
        evalue_ci=_evalue_ci(r, lo, hi),
        note="risk ratio",
    )


def hr_to_rr(hr: float, *, rare: bool) -> float:
    """Risk ratio approximated from a hazard ratio: HR itself for a rare outcome, else
    (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) (increasing in HR, 1 at HR = 1)."""
    h = _positive("hr", hr)
    if rare:
        return h
    return (1.0 - 0.5 ** math.sqrt(h)) / (1.0 - 0.5 ** math.sqrt(1.0 / h))


def evalue_hr(
    hr: float, lower: float | None = None, upper: float | None = None, *, rare: bool
) -> EValue:
    """E-values of a hazard ratio; ``rare``: the outcome occurs in < 15% by the end of follow-up
    (then RR ~ HR), otherwise the common-outcome square-root conversion is used."""
    h = _positive("hr", hr)
    lo, hi = _check_interval(h, lower, upper)

    def conv(v: float) -> float:
        return hr_to_rr(v, rare=rare) if math.isfinite(v) else math.nan

    rr, rr_lo, rr_hi = conv(h), conv(lo), conv(hi)
    note = (
        "hazard ratio, rare outcome: RR ~ HR"
        if rare
        else "hazard ratio, common outcome: RR ~ (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))"
    )
    return EValue(
        measure="HR",
        estimate=h,
        lower=lo,
        upper=hi,
        rr=rr,
        rr_lower=rr_lo,
        rr_upper=rr_hi,
        evalue=evalue_point(rr),
        evalue_ci=_evalue_ci(rr, rr_lo, rr_hi),
        note=note,
    )


def _risk(name: str, value) -> float:
    v = float(value)
    if not math.isfinite(v) or not 0 < v < 1:
        raise ValueError(f"{name} must be a probability strictly between 0 and 1; got {value!r}")
    return v


def risk_ratio_from_risks(
    risk_treated: float,
    risk_control: float,
    *,
    se_log_rr: float | None = None,
    n_treated: int | None = None,
    n_control: int | None = None,
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """(RR, lower, upper) from two arms' risks with a Wald interval on log RR.

    The standard error of log RR is ``se_log_rr`` when given (e.g. the delta method on doubly
    robust arm means), else the binomial one sqrt((1-p1)/(n1 p1) + (1-p0)/(n0 p0)).
    """
    p1, p0 = _risk("risk_treated", risk_treated), _risk("risk_control", risk_control)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    if se_log_rr is None:
        if n_treated is None or n_control is None:
            raise ValueError("give se_log_rr, or n_treated and n_control for the binomial SE")
        if int(n_treated) < 1 or int(n_control) < 1:
            raise ValueError(f"arm sizes must be >= 1; got {n_treated} and {n_control}")
        se = math.sqrt((1 - p1) / (int(n_treated) * p1) + (1 - p0) / (int(n_control) * p0))
    else:
        se = float(se_log_rr)
        if not math.isfinite(se) or se < 0:
            raise ValueError(f"se_log_rr must be finite and >= 0; got {se_log_rr!r}")
    z = float(stats.norm.ppf(1 - alpha / 2))
    log_rr = math.log(p1 / p0)
    return p1 / p0, math.exp(log_rr - z * se), math.exp(log_rr + z * se)


def evalue_risk_difference(
    risk_treated: float,
    risk_control: float,
    *,
    se_log_rr: float | None = None,
    n_treated: int | None = None,
    n_control: int | None = None,
    alpha: float = 0.05,
) -> EValue:
    """E-values of a risk difference p1 - p0, through the risk ratio p1 / p0 (see
    ``risk_ratio_from_risks`` for its interval)."""
    rr, lo, hi = risk_ratio_from_risks(
        risk_treated,
        risk_control,
        se_log_rr=se_log_rr,
        n_treated=n_treated,
        n_control=n_control,
        alpha=alpha,
    )
    how = "delta-method" if se_log_rr is not None else "binomial"
    return replace(
        evalue_rr(rr, lo, hi),
        note=(
            f"risk difference {risk_treated - risk_control:+.4g} "
            f"({risk_treated:.4g} vs {risk_control:.4g}) as the risk ratio p1/p0; "
            f"Wald interval on log RR ({how} SE)"
        ),
    )
