"""The what-if figures drawn as SVG (hte.app.svg): text alternatives, escaped data text, the
colour-blind-safe palette, and a waterfall whose bars end at the effect it explains."""

from __future__ import annotations

import re

import numpy as np

from hte.app import svg
from hte.app.whatif_form import check_form


def test_figures_carry_alt_text_and_escape_data_text():
    times = np.arange(0, 24.5, 0.5)
    arms = {
        arm: {
            "survival": np.exp(-r * times),
            "lower": np.exp(-1.2 * r * times),
            "upper": np.exp(-0.8 * r * times),
        }
        for arm, r in (("cart", 0.03), ("tec", 0.05))
    }
    out = svg.survival_curves(times, arms, 12.0, "curves <b>& alt</b>", "90%")
    assert 'role="img"' in out and 'aria-label="curves &lt;b&gt;&amp; alt&lt;/b&gt;"' in out
    assert "<title>curves &lt;b&gt;" in out and "<b>" not in out
    assert svg.CART in out and svg.TEC in out and "nan" not in out.lower()
    assert "shaded: 90% band" in out  # the run's level, not a fixed 95%
    wf = svg.waterfall([("<script>x</script> = 3", 2.0)], 1.0, 3.0, "points", "t", "alt")
    assert "<script>" not in wf and "&lt;script&gt;" in wf


def test_waterfall_bars_end_at_the_total():
    """The running sum of the drawn bars (cohort average, contributions, the unexplained rest)
    reaches the effect on the last bar: positions read back from the SVG."""
    rows = [("Age = 80 years", -3.0), ("ECOG = 2", 1.5), ("not captured by the explanation", 0.4)]
    base, total = 5.0, 5.0 - 3.0 + 1.5 + 0.4
    out = svg.waterfall(rows, base, total, "points", "title", "alt")
    rects = [
        tuple(float(v) for v in m)
        for m in re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', out)
    ]
    assert len(rects) == len(rows) + 2
    # the scale maps effect units linearly: recover it from the first bar (0 to base)
    _, w0 = rects[0]
    unit = w0 / base
    last_contribution = rects[-2]
    end = last_contribution[0] + last_contribution[1]  # a positive last bar ends on its right
    x_total, w_total = rects[-1]
    assert abs(end - (x_total + w_total)) < 0.2  # the "this profile" bar ends where they end
    assert abs(w_total / unit - total) < 0.05
    assert svg.UP in out and svg.DOWN in out


def test_form_rules_use_the_runs_ranges_and_unknown():
    from hte.pipeline.profile_fields import ProfileField

    age = ProfileField("age", "Age", "number", "years", 70.0, 37.2, 90.0, 40, 88, 0.1)
    crp = ProfileField(
        "crp",
        "C-reactive protein",
        "number",
        "mg/L",
        5.0,
        0.1,
        170.0,
        0.2,
        150,
        0.1,
        missing_allowed=True,
    )
    profile, errors = check_form([age, crp], {"age": 130, "crp": None})
    assert errors == {
        "age": "Age: 130 is outside the range of this run's patients (37.2 to 90 "
        "years); enter a value in that range."
    }
    assert profile == {"crp": None}
    _, errors = check_form([age, crp], {"age": None, "crp": 5})
    assert "Age is empty" in errors["age"] and "from 37.2 to 90 years" in errors["age"]


def _deuteranope_lab(hex_colour: str) -> np.ndarray:
    """CIELAB of a colour as a deuteranope sees it (Vienot, Brettel & Mollon 1999 simulation
    in linear RGB)."""
    c = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    rgb = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    sim = np.array([[0.29275, 0.70725, 0], [0.29275, 0.70725, 0], [-0.02234, 0.02234, 1]])
    rgb = np.clip(sim @ rgb, 0, 1)
    xyz = (
        np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
        @ rgb
        / np.array([0.95047, 1, 1.08883])
    )
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_palette_survives_deuteranopia():
    """Pairs that carry meaning stay far apart (CIELAB distance > 40) for a deuteranope; the
    old red/green waterfall pair did not (about 13, the reason for the change)."""
    far = lambda a, b: np.linalg.norm(_deuteranope_lab(a) - _deuteranope_lab(b))  # noqa: E731
    assert far("#2e8540", "#b03a2e") < 20  # the old benefit/harm pair: confusable
    assert far(svg.CART, svg.TEC) > 40
    assert far(svg.UP, svg.DOWN) > 40
    from hte.app.plots import BENEFIT_COLOUR, CART_COLOUR, HARM_COLOUR, TEC_COLOUR

    assert far(CART_COLOUR, TEC_COLOUR) > 40 and far(BENEFIT_COLOUR, HARM_COLOUR) > 40


def test_what_moves_it_draws_a_model_without_intervals():
    # a shown model without intervals (Cox with interactions, no bootstrap) gives NaN bounds:
    # the line is drawn, with no band and no NaN anywhere in the figure
    effect = [1.0, 2.0, 4.0]
    nan = [float("nan")] * 3
    for categorical, x in ((False, [40, 60, 80]), (True, ["a", "b", "c"])):
        out = svg.what_moves_it(x, effect, nan, nan, x[1], "age", "effect", categorical, "alt")
        assert "nan" not in out.lower() and "<svg" in out
        assert "<polygon" not in out
        banded = svg.what_moves_it(
            x, effect, [0, 1, 3], [2, 3, 5], x[1], "age", "effect", categorical, "alt"
        )
        assert ("<polygon" in banded) != categorical
