"""Overlap and balance diagnostics: balance tables, weights, propensity trimming, overlap summaries.

Conventions: treatment 1 = CAR-T ("cart"), 0 = teclistamab ("tec"); strings "cart"/"tec" are
accepted too. Standardized mean differences (SMD) are (mean CAR-T - mean teclistamab) / pooled SD,
the pooled SD being sqrt((s1^2 + s0^2) / 2) of the *unweighted* arms, so SMDs before and after
weighting share one yardstick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hte.array_checks import check_treatment
from hte.data.columns import CART, TEC

ARM_LABELS = {1: "CAR-T", 0: "teclistamab"}
WEIGHT_KINDS = ("ipw", "overlap", "att")
TRIM_RULES = ("fixed", "crump")


# ---------------------------------------------------------------- inputs


def as_binary_treatment(treatment, n: int | None = None) -> np.ndarray:
    """Treatment as 0/1 ints (1 = CAR-T); accepts 0/1, booleans or the codes "cart"/"tec"."""
    arr = np.asarray(treatment)
    n = arr.shape[0] if n is None else n
    if arr.dtype.kind in "OUS" or isinstance(getattr(treatment, "dtype", None), pd.StringDtype):
        codes = pd.Series(arr, dtype=object)
        bad = ~codes.isin([CART, TEC])
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())[:5].tolist()
            raise ValueError(
                f"treatment codes must be {CART!r} or {TEC!r}; rows {rows} have "
                f"{codes[bad].unique()[:5].tolist()}"
            )
        arr = (codes == CART).to_numpy().astype(int)
    return check_treatment(arr, n)


def _propensity(propensity, n: int | None = None) -> np.ndarray:
    e = np.asarray(propensity, dtype=float)
    if e.ndim != 1 or (n is not None and e.shape[0] != n):
        raise ValueError(
            f"propensity must have shape ({n if n is not None else 'n'},); got {e.shape}"
        )
    bad = ~((e > 0) & (e < 1))
    if bad.any():
        raise ValueError(
            "propensity must lie strictly in (0, 1) (no NaN); rows "
            f"{np.flatnonzero(bad)[:5].tolist()} have {e[bad][:5].tolist()}; clip it "
            "(cross_fit_propensity does)"
        )
    return e


# ---------------------------------------------------------------- balance


def _weighted_mean_var(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted mean and variance, reliability-weight correction (ddof=1 when all w = 1)."""
    ok = ~np.isnan(x)
    x, w = x[ok], w[ok]
    sw = w.sum()
    if x.size == 0 or sw <= 0:
        return np.nan, np.nan
    mean = float(np.sum(w * x) / sw)
    denom = sw - np.sum(w**2) / sw
    var = float(np.sum(w * (x - mean) ** 2) / denom) if denom > 0 else np.nan
    return mean, var


def _smd(diff: float, sd: float) -> float:
    if np.isnan(diff) or np.isnan(sd):
        return np.nan
    if sd == 0:
        return 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    return diff / sd


def balance_table(X: pd.DataFrame, treatment, weights=None) -> pd.DataFrame:
    """Per covariate: means by arm and SMD, unweighted and (given ``weights``) weighted.

    Columns: ``mean_cart``, ``mean_tec``, ``smd``, ``var_ratio`` (CAR-T / teclistamab variance),
    then with weights ``mean_cart_w``, ``mean_tec_w``, ``smd_w``, ``var_ratio_w`` (weighted means
    and variances), and ``missing_share``. The SMD denominator is the unweighted pooled SD in both
    cases. Missing values are left out per covariate (their share is reported).
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError("X must be a pandas DataFrame (covariate names label the table)")
    non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric:
        raise ValueError(
            f"X columns {non_numeric} are not numeric; encode them first (build_design_matrix)"
        )
    w_arm = as_binary_treatment(treatment, len(X))
    if weights is not None:
        wts = np.asarray(weights, dtype=float)
        if wts.shape != (len(X),) or np.isnan(wts).any() or (wts < 0).any():
            raise ValueError(f"weights must be {len(X)} non-negative numbers without NaN")
    rows = {}
    ones = np.ones(len(X))
    for col in X.columns:
        x = X[col].to_numpy(dtype=float)
        m1, v1 = _weighted_mean_var(x[w_arm == 1], ones[w_arm == 1])
        m0, v0 = _weighted_mean_var(x[w_arm == 0], ones[w_arm == 0])
        sd = np.sqrt((v1 + v0) / 2.0)
        row = {
            "mean_cart": m1,
            "mean_tec": m0,
            "smd": _smd(m1 - m0, sd),
            "var_ratio": v1 / v0 if v0 > 0 else np.nan,
        }
        if weights is not None:
            mw1, vw1 = _weighted_mean_var(x[w_arm == 1], wts[w_arm == 1])
            mw0, vw0 = _weighted_mean_var(x[w_arm == 0], wts[w_arm == 0])
            row |= {
                "mean_cart_w": mw1,
                "mean_tec_w": mw0,
                "smd_w": _smd(mw1 - mw0, sd),
                "var_ratio_w": vw1 / vw0 if vw0 > 0 else np.nan,
            }
        row["missing_share"] = float(np.isnan(x).mean())
        rows[col] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "covariate"
    return table


# ---------------------------------------------------------------- weights


def ate_weights(propensity, treatment, kind: str = "ipw") -> np.ndarray:
    """Balancing weights from a propensity score.

    ``"ipw"``: stabilized inverse probability of treatment weights, P(W=w) / P(W=w | x) (target:
    ATE). ``"overlap"``: 1 - e(x) for CAR-T, e(x) for teclistamab (Li, Morgan & Zaslavsky 2018;
    target: the overlap population, bounded weights). ``"att"``: 1 for CAR-T, e / (1 - e) for
    teclistamab (target: ATT).
    """
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"kind must be one of {WEIGHT_KINDS}; got {kind!r}")
    e = _propensity(propensity)
    w = as_binary_treatment(treatment, e.shape[0])
    if kind == "ipw":
        p1 = w.mean()
        return np.where(w == 1, p1 / e, (1.0 - p1) / (1.0 - e))
    if kind == "overlap":
        return np.where(w == 1, 1.0 - e, e)
    return np.where(w == 1, 1.0, e / (1.0 - e))


def effective_sample_size(weights) -> float:
    """Kish effective sample size (sum w)^2 / sum w^2."""
    w = np.asarray(weights, dtype=float)
    s2 = np.sum(w**2)
    return float(np.sum(w) ** 2 / s2) if s2 > 0 else 0.0


# ---------------------------------------------------------------- trimming


@dataclass(frozen=True)
class TrimResult:
    """Which patients a propensity trimming rule keeps, how many it set aside, and why."""

    keep: np.ndarray  # (n,) bool
    n_trimmed: int
    n_trimmed_cart: int
    n_trimmed_tec: int
    n_below: int
    n_above: int
    bounds: tuple[float, float]
    rule: str
    reason: str


def crump_alpha(propensity) -> float:
    """Crump, Hotz, Imbens & Mitnik (2009) optimal threshold: keep alpha <= e <= 1 - alpha.

    The asymptotic variance bound of the effect on the sub-population {x: g(x) <= gamma}, with
    g = 1 / (e (1 - e)) and homoskedastic outcomes, is proportional to E[g | g <= gamma] / P(g <=
    gamma). We minimise its empirical version over gamma in the observed g values (sorted ascending,
    that is minimising sum_{i<=k} g_(i) / k^2 over k), whose first-order condition is the paper's
    gamma = 2 E[g | g <= gamma]; alpha follows from gamma = 1 / (alpha (1 - alpha)). If keeping
    everyone is optimal, alpha = 0.
    """
    e = _propensity(propensity)
    g = np.sort(1.0 / (e * (1.0 - e)))
    k = np.arange(1, g.size + 1)
    bound = np.cumsum(g) / k**2
    k_best = int(np.argmin(bound))
    if k_best == g.size - 1:
        return 0.0
    gamma = g[k_best]
    return float(0.5 - np.sqrt(max(0.25 - 1.0 / gamma, 0.0)))


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x not in (0.0, 1.0) else f"{x:.0f}"


def trim_by_propensity(
    propensity,
    treatment,
    rule: str = "fixed",
    bounds: tuple[float, float] = (0.05, 0.95),
) -> TrimResult:
    """Keep patients with propensity in [low, high]; report who was set aside, by arm, and why.

    ``rule="fixed"`` uses ``bounds``; ``rule="crump"`` uses [alpha, 1 - alpha] from ``crump_alpha``
    (``bounds`` is then ignored). Nobody is dropped silently: the caller applies ``keep`` and shows
    ``reason``.
    """
    if rule not in TRIM_RULES:
        raise ValueError(f"rule must be one of {TRIM_RULES}; got {rule!r}")
    e = _propensity(propensity)
    w = as_binary_treatment(treatment, e.shape[0])
    if rule == "crump":
        alpha = crump_alpha(e)
        low, high = alpha, 1.0 - alpha
        source = "the Crump et al. (2009) optimal rule"
    else:
        low, high = (float(b) for b in bounds)
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"bounds must satisfy 0 <= low < high <= 1; got {bounds}")
        source = "fixed bounds"
    below, above = e < low, e > high
    keep = ~(below | above)
    n_cart = int(np.sum(~keep & (w == 1)))
    n_tec = int(np.sum(~keep & (w == 0)))
    n_trim = n_cart + n_tec
    interval = f"[{_fmt(low)}, {_fmt(high)}]"
    if n_trim == 0:
        reason = f"no patients set aside: every propensity lies within {interval} ({source})"
    else:
        reason = (
            f"{n_trim} patient{'s' if n_trim != 1 else ''} ({n_tec} teclistamab, {n_cart} CAR-T) "
            f"set aside: propensity outside {interval} ({source}; {int(below.sum())} below, "
            f"{int(above.sum())} above)"
        )
    return TrimResult(
        keep=keep,
        n_trimmed=n_trim,
        n_trimmed_cart=n_cart,
        n_trimmed_tec=n_tec,
        n_below=int(below.sum()),
        n_above=int(above.sum()),
        bounds=(float(low), float(high)),
        rule=rule,
        reason=reason,
    )


# ---------------------------------------------------------------- summary

QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
HIST_BINS = np.linspace(0.0, 1.0, 21)


@dataclass(frozen=True)
class OverlapSummary:
    """Propensity distribution by arm and what weighting costs in effective sample size."""

    n: dict[str, int]  # patients per arm ("cart", "tec")
    quantiles: pd.DataFrame  # index "cart"/"tec", columns the quantile levels
    share_outside_05_95: dict[str, float]  # keys "all", "cart", "tec"
    share_outside_10_90: dict[str, float]
    bin_edges: np.ndarray  # (21,) fixed bins on [0, 1] for plots
    hist_cart: np.ndarray  # (20,) counts
    hist_tec: np.ndarray
    ess_ipw: dict[str, float]  # Kish effective sample size per arm under stabilized IPW
    ess_overlap: dict[str, float]  # ... under overlap weights
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-friendly form for run folders and reports."""
        return {
            "n": self.n,
            "quantiles": {
                arm: {str(q): float(v) for q, v in row.items()}
                for arm, row in self.quantiles.iterrows()
            },
            "share_outside_05_95": self.share_outside_05_95,
            "share_outside_10_90": self.share_outside_10_90,
            "bin_edges": self.bin_edges.tolist(),
            "hist_cart": self.hist_cart.tolist(),
            "hist_tec": self.hist_tec.tolist(),
            "ess_ipw": self.ess_ipw,
            "ess_overlap": self.ess_overlap,
            "notes": list(self.notes),
        }


def _share_outside(e: np.ndarray, w: np.ndarray, low: float, high: float) -> dict[str, float]:
    out = (e < low) | (e > high)
    return {
        "all": float(out.mean()),
        CART: float(out[w == 1].mean()),
        TEC: float(out[w == 0].mean()),
    }


def overlap_summary(propensity, treatment) -> OverlapSummary:
    """Propensity quantiles and histograms by arm, shares in the tails, effective sample sizes."""
    e = _propensity(propensity)
    w = as_binary_treatment(treatment, e.shape[0])
    arms = {CART: e[w == 1], TEC: e[w == 0]}
    quantiles = pd.DataFrame(
        {arm: np.quantile(vals, QUANTILES) for arm, vals in arms.items()}, index=list(QUANTILES)
    ).T
    ess = {}
    for kind in ("ipw", "overlap"):
        wt = ate_weights(e, w, kind=kind)
        ess[kind] = {
            CART: effective_sample_size(wt[w == 1]),
            TEC: effective_sample_size(wt[w == 0]),
        }
    notes = []
    share = _share_outside(e, w, 0.1, 0.9)["all"]
    if share > 0.1:
        notes.append(
            f"{share:.0%} of patients have a propensity outside [0.1, 0.9]: overlap is limited; "
            "consider overlap weights or trimming"
        )
    return OverlapSummary(
        n={CART: int(arms[CART].size), TEC: int(arms[TEC].size)},
        quantiles=quantiles,
        share_outside_05_95=_share_outside(e, w, 0.05, 0.95),
        share_outside_10_90=_share_outside(e, w, 0.1, 0.9),
        bin_edges=HIST_BINS.copy(),
        hist_cart=np.histogram(arms[CART], bins=HIST_BINS)[0],
        hist_tec=np.histogram(arms[TEC], bins=HIST_BINS)[0],
        ess_ipw=ess["ipw"],
        ess_overlap=ess["overlap"],
        notes=notes,
    )
