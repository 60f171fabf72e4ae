"""The what-if view's words and cards: the glossary, the effect cards with their intervals and
measured coverage, the "patients like this" line, the support warning and the plain summary. Every
number comes from the profile's effects (``hte.pipeline.profile.ProfileExplorer``)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from hte.runs import interval_level

# --------------------------------------------------------------------------------------------------
# Words

GLOSSARY = {
    "percentage points": "The difference between two percentages: 60% against 50% is 10 "
    "percentage points.",
    "interval": "The range of effects compatible with the data at the level shown (one minus "
    "the run's evaluation.alpha), if the model is right. Below it: how often such intervals held the true effect when the run "
    "checked them against known effects.",
    "prognosis model": "A simpler model of each treatment's outcome for patients like this; "
    "its numbers are moved to agree with the effect shown above them.",
    "support": "Whether the cohort had patients like this under each treatment; without them "
    "the numbers are extrapolated.",
    "months of life gained": "Of the next 24 months, how many more months a patient like this "
    "would live on average with CAR-T than with teclistamab (the restricted mean survival "
    "time difference).",
}


def term(word: str, shown: str | None = None) -> str:
    """A glossary term: dotted underline, its definition on hover (and to screen readers)."""
    return (
        f'<abbr class="hte-term" title="{escape(GLOSSARY[word])}" tabindex="0">'
        f"{escape(shown or word)}</abbr>"
    )


ARM_WORDS = {"cart": "CAR-T", "tec": "teclistamab"}


# --------------------------------------------------------------------------------------------------
# One profile's display


def _est(e: Mapping | None) -> tuple:
    if not e:
        return None, None, None
    return e.get("value"), e.get("lower"), e.get("upper")


def _card(key: str, value: str, detail: str = "", cls: str = "") -> str:
    """A card; ``detail`` is HTML (already escaped)."""
    return (
        f'<div class="hte-card"><div class="hte-k">{escape(key)}</div>'
        f'<div class="hte-v {cls}">{escape(value)}</div>'
        f'<div class="hte-i">{detail}</div></div>'
    )


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def _coverage_words(coverage: Mapping | None) -> str:
    if not coverage:
        return ""
    if coverage.get("kind") == "average":
        return "<br>This is an interval for the cohort's average effect, not for one patient's."
    if coverage.get("coverage") is None:
        return "<br>Its coverage cannot be measured on real data (no known true effects)."
    return (
        f"<br>In this run's check against known effects, such intervals held the true "
        f"effect for {100 * coverage['coverage']:.0f}% of patients."
    )


def _interval(lo, hi, pct: bool, coverage: Mapping | None, level: str) -> str:
    if lo is None or hi is None:
        return "no interval for this number"
    if pct:
        text = f"{term('interval', f'{level} interval')} {_points(lo)} to {_points(hi)} points"
    else:
        text = f"{term('interval', f'{level} interval')} {lo:+.1f} to {hi:+.1f} months"
    return text + _coverage_words(coverage)


def effect_cards(effects: Mapping, coverage: Mapping | None = None) -> str:
    """The headline numbers, in plain words: the differences with their intervals (and how
    often such intervals covered), each treatment's numbers, how they fit together."""
    coverage = coverage or {}
    level = interval_level(effects.get("alpha"))
    cards = []
    h = effects.get("survival_horizon")
    v, lo, hi = _est(effects.get("survival_difference"))
    if v is not None:
        cards.append(
            _card(
                f"Alive at {h:g} months: CAR-T minus teclistamab",
                f"{_points(v)} percentage points",
                _interval(lo, hi, True, coverage.get("survival"), level),
            )
        )
    for arm, cls in (("cart", "hte-cart"), ("tec", "hte-tec")):
        v, lo, hi = _est(effects.get(f"survival_{arm}"))
        if v is not None:
            cards.append(
                _card(
                    f"Alive at {h:g} months with {ARM_WORDS[arm]}",
                    pct(v),
                    f"band {pct(lo)} to {pct(hi)}",
                    cls,
                )
            )
    v, lo, hi = _est(effects.get("rmst_difference"))
    if v is not None:
        hr = effects.get("rmst_horizon")
        cards.append(
            _card(
                f"Months of life gained over {hr:g} months with CAR-T",
                f"{v:+.1f} months",
                _interval(lo, hi, False, coverage.get("rmst"), level),
            )
        )
    v, lo, hi = _est(effects.get("crs_difference"))
    if v is not None:
        cards.append(
            _card(
                "CRS risk: CAR-T minus teclistamab",
                f"{_points(v)} percentage points",
                _interval(lo, hi, True, coverage.get("crs"), level),
            )
        )
    for prefix, words in (("crs", "CRS risk"), ("crs_g3", "Severe (grade 3+) CRS risk")):
        for arm, cls in (("cart", "hte-cart"), ("tec", "hte-tec")):
            v, lo, hi = _est(effects.get(f"{prefix}_{arm}"))
            if v is not None:
                cards.append(
                    _card(
                        f"{words} with {ARM_WORDS[arm]}",
                        pct(v),
                        f"band {pct(lo)} to {pct(hi)}",
                        cls,
                    )
                )
    unsupported = any(
        not d.get("supported", True) for d in (effects.get("joint_support") or {}).values()
    )
    banner = (
        '<div class="hte-extrapolated">Extrapolated: the cohort had no patients like this '
        "under both treatments (see the red box).</div>"
        if unsupported
        else ""
    )
    return (
        f'{banner}<div class="hte-cards">{"".join(cards)}</div>'
        f"{fit_together(effects)}{_like_this(effects, level)}"
    )


def fit_together(effects: Mapping) -> str:
    """How the cards agree: differences from the model the run chose, each treatment's numbers
    from a prognosis model moved to agree, and how far it was moved."""
    own = (effects.get("coherence") or {}).get("prognosis_model") or {}
    bits = []
    s = own.get("survival")
    if s and effects.get("survival_cart"):
        bits.append(
            f"alive at {effects['survival_horizon']:g} months {pct(s['cart'])} with "
            f"CAR-T and {pct(s['tec'])} with teclistamab (shown: "
            f"{pct(effects['survival_cart']['value'])} and "
            f"{pct(effects['survival_tec']['value'])})"
        )
    c = own.get("crs")
    if c and effects.get("crs_cart"):
        bits.append(
            f"CRS {pct(c['cart'])} and {pct(c['tec'])} (shown: "
            f"{pct(effects['crs_cart']['value'])} and "
            f"{pct(effects['crs_tec']['value'])})"
        )
    if not bits:
        return ""
    constant = [
        k
        for k, e in effects.items()
        if k.endswith("_difference")
        and isinstance(e, Mapping)
        and e.get("source") == "average effect (DR)"
    ]
    source = (
        "the cohort's average effect (this cohort does not support individual differences "
        "for "
        + ", ".join(CONSTANT_NAMES.get(k.removesuffix("_difference"), k) for k in constant)
        + ")"
        if constant
        else "the model this run chose by held-out accuracy"
    )
    return (
        '<div class="hte-i hte-fit" style="margin-top:6px">How these numbers fit together: each '
        f"difference comes from {escape(source)}; each treatment's numbers come from a "
        f"{term('prognosis model')} moved as little as possible to agree with it, so they add "
        f"up. On its own the prognosis model gave {escape('; '.join(bits))}.</div>"
    )


CONSTANT_NAMES = {
    "survival": "survival",
    "rmst": "months of life",
    "crs": "CRS",
    "crs_g3": "severe CRS",
}
LIKE_THIS_WORDS = {
    "survival": ("survival", True),
    "rmst": ("months of life gained", False),
    "crs": ("CRS", True),
    "crs_g3": ("severe CRS", True),
}


def _like_this(effects: Mapping, level: str) -> str:
    """One line per target: the DR estimate of the held-out predicted-benefit group of the
    profile (the interval that covers: a group mean, not this patient's effect)."""
    groups = effects.get("patients_like_this") or {}
    items = []
    for target, g in groups.items():
        name, pct = LIKE_THIS_WORDS.get(target, (target, True))
        value = f"{_points(g['estimate'])} points" if pct else f"{g['estimate']:+.1f} months"
        ci = (
            f"{level} interval {_points(g['lower'])} to {_points(g['upper'])} points"
            if pct
            else f"{level} interval {g['lower']:+.1f} to {g['upper']:+.1f} months"
        )
        where = (
            "all patients"
            if g["n_groups"] == 1
            else f"group {g['group']} of {g['n_groups']}, n = {g['n']}"
        )
        items.append(f"<li>{escape(name)}: {escape(value)} ({escape(ci)}; {escape(where)})</li>")
    if not items:
        return ""
    return (
        '<div class="hte-i" style="margin-top:6px">Patients like this (the observed effect '
        "in the group of patients with similar predicted benefit; its interval is for the "
        f"group's mean effect):<ul>{''.join(items)}</ul></div>"
    )


def warning_html(effects: Mapping) -> str:
    """A red box listing out-of-support flags; a quiet line when the profile is supported."""
    warnings = list(effects.get("warnings") or [])
    if not warnings:
        return (
            '<div class="hte-ok">Inside the cohort\'s ' + term("support") + ": values within "
            "the observed ranges, and similar patients received each treatment.</div>"
        )
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return (
        '<div class="hte-warning" role="alert"><strong>Outside the cohort\'s support: read '
        f"these numbers as extrapolation.</strong><ul>{items}</ul></div>"
    )


def form_error_html(errors: Mapping[str, str]) -> str:
    items = "".join(f"<li>{escape(m)}</li>" for m in errors.values())
    return (
        '<div class="hte-warning" role="alert"><strong>Results cleared: '
        f"{len(errors)} field{'s' if len(errors) > 1 else ''} to fix.</strong>"
        f"<ul>{items}</ul></div>"
    )


def summary_html(effects: Mapping) -> str:
    defaults = effects.get("defaults_used") or []
    extra = (
        f" Fields not given took the cohort's typical value: {', '.join(defaults)}."
        if defaults and len(defaults) < 6
        else ""
    )
    unknown = [k for k, v in (effects.get("profile") or {}).items() if v is None]
    if unknown:
        extra += f" Unknown: {', '.join(unknown)} (treated as the model treats missing values)."
    return (
        f'<div class="hte-summary">{escape(str(effects.get("summary", "")))}{escape(extra)}</div>'
    )
