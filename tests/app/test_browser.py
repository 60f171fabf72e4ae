"""The explorer in headless Chromium (Playwright): set a profile value, see the outputs change,
and a screenshot of every tab."""

from __future__ import annotations

import struct
import time

import pytest

from hte.app.screenshots import TABS, launch_browser, open_tab, wait_for_app

playwright = pytest.importorskip("playwright.sync_api")


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_setting_a_profile_value_updates_outputs_and_every_tab_renders(app_url, tmp_path):
    with playwright.sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(app_url)
        wait_for_app(page)
        assert "not a treatment recommendation" in page.inner_text("#research-note")
        before = page.inner_text("#effect-cards")
        summary_before = page.inner_text("#plain-summary")
        # set one profile value: extramedullary disease yes/no (whichever it is not)
        field = page.locator("#field-extramedullary")
        target = "no" if field.get_by_label("yes").is_checked() else "yes"
        field.get_by_label(target).check()
        page.wait_for_function(
            "(b) => document.querySelector('#effect-cards').innerText !== b",
            arg=before,
            timeout=30_000,
        )
        assert page.inner_text("#effect-cards") != before
        assert page.inner_text("#plain-summary") != summary_before
        assert page.locator("#icon-array use").count() == 200  # two arrays of 100 people
        shots = []
        for slug, title in TABS:
            open_tab(page, title)
            path = tmp_path / f"{slug}.png"
            page.screenshot(path=str(path), full_page=True)
            shots.append(path)
        # the cohort tab drew its plots; the data tab offers the upload
        open_tab(page, "Your data")
        assert page.locator("#upload-file").is_visible()
        browser.close()
    for path in shots:
        width, height = _png_size(path)
        assert width >= 1400 and height >= 900, path


# --------------------------------------------------------------------------------------------------
# Issue 14: one coherent answer, support on the joint profile, refused inputs, unknown values


def _page(p, app_url):
    browser = launch_browser(p)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(app_url)
    wait_for_app(page)
    return browser, page


def _set_number(page, name: str, value) -> None:
    box = page.locator(f"#field-{name} input")
    box.fill("" if value is None else str(value))
    box.press("Enter")


def _card_numbers(page) -> dict[str, float]:
    """Card title -> its number (percent or points) as shown, read in one go from cards that
    have stopped changing (card by card, a redraw in between could mix two answers)."""
    _wait_cards_settle(page)
    pairs = page.evaluate(
        """() => [...document.querySelectorAll('#effect-cards .hte-card')].map(
            c => [c.querySelector('.hte-k').innerText, c.querySelector('.hte-v').innerText])"""
    )
    return {k.strip().lower(): float(v.split()[0].replace("%", "")) for k, v in pairs}


def _wait_cards_settle(page, quiet_ms: int = 600, timeout_s: float = 30.0) -> None:
    """Until the cards' text is the same over ``quiet_ms`` (the app may redraw them twice)."""
    deadline = time.monotonic() + timeout_s
    text = page.inner_text("#effect-cards")
    while time.monotonic() < deadline:
        page.wait_for_timeout(quiet_ms)
        again = page.inner_text("#effect-cards")
        if again == text:
            return
        text = again
    raise AssertionError("the effect cards kept changing")


def _wait_cards_change(page, before: str) -> None:
    page.wait_for_function(
        "(b) => document.querySelector('#effect-cards').innerText !== b",
        arg=before,
        timeout=30_000,
    )


def test_cards_icons_and_sentence_tell_one_story(app_url):
    """The headline difference equals the per-arm numbers beside it (to the shown rounding),
    for the typical patient and after changing a field; icons and sentence say the same."""
    with playwright.sync_playwright() as p:
        browser, page = _page(p, app_url)
        for step in range(2):
            cards = _card_numbers(page)
            d = next(v for k, v in cards.items() if k.startswith("alive at 12 months: car-t"))
            a = next(v for k, v in cards.items() if k == "alive at 12 months with car-t")
            b = next(v for k, v in cards.items() if k == "alive at 12 months with teclistamab")
            assert abs((a - b) - d) <= 1.0, cards  # percentages shown rounded to whole numbers
            c = next(v for k, v in cards.items() if k.startswith("crs risk: car-t"))
            ca = next(v for k, v in cards.items() if k == "crs risk with car-t")
            cb = next(v for k, v in cards.items() if k == "crs risk with teclistamab")
            assert abs((ca - cb) - c) <= 1.0, cards
            summary = page.inner_text("#plain-summary")
            assert f"about {a:.0f} would be alive at 12 months with CAR-T and {b:.0f}" in summary
            assert f"({ca:.0f} vs {cb:.0f})" in summary
            # the icon arrays may be redrawn a moment after the cards: wait for them
            page.wait_for_function(
                "(t) => document.querySelector('#icon-array').innerText.includes(t)",
                arg=f"{a:.0f} alive at 12 months",
                timeout=30_000,
            )
            assert "need not add up" not in page.inner_text("#effect-cards")
            if step == 0:
                before = page.inner_text("#effect-cards")
                _set_number(page, "age", 80)
                _wait_cards_change(page, before)
        # real alt text on every drawn figure
        for fig in ("#curves-plot svg", "#moves-plot svg"):
            label = page.locator(fig).get_attribute("aria-label")
            assert label and "undefined" not in label and len(label) > 40
        browser.close()


def test_out_of_range_and_empty_values_are_refused_next_to_the_field(app_url):
    with playwright.sync_playwright() as p:
        browser, page = _page(p, app_url)
        _set_number(page, "age", 130)
        page.wait_for_selector("#error-age .hte-field-msg", timeout=30_000)
        message = page.inner_text("#error-age")
        assert "Age: 130 is outside the range of this run's patients" in message
        assert " to 90 years" in message or "years" in message
        assert page.inner_text("#effect-cards").strip() == ""  # cleared, not stale
        assert "Results cleared" in page.inner_text("#support-warning")
        # an empty field: unknown where the run has a missing-value path, else refused with why
        _set_number(page, "crcl", None)
        page.wait_for_selector("#error-crcl .hte-field-msg", timeout=30_000)
        assert "Creatinine clearance is empty" in page.inner_text("#error-crcl")
        _set_number(page, "crcl", 80)
        _set_number(page, "age", 70)
        page.wait_for_selector("#effect-cards .hte-cards", timeout=30_000)
        assert page.inner_text("#error-age").strip() == ""
        assert page.inner_text("#error-crcl").strip() == ""
        browser.close()


def test_the_all_extremes_profile_is_flagged_in_the_browser(app_url, small_run):
    from hte.app.state import AppContext

    fields = {f.name: f for f in AppContext.create(small_run).explorer().fields()}
    with playwright.sync_playwright() as p:
        browser, page = _page(p, app_url)
        assert "Inside the cohort" in page.inner_text("#support-warning")
        before = page.inner_text("#effect-cards")
        for name, value in (
            ("age", fields["age"].maximum),
            ("ecog", 4),
            ("crcl", fields["crcl"].minimum),
            ("ferritin", fields["ferritin"].maximum),
            ("crp", fields["crp"].maximum),
        ):
            _set_number(page, name, value)
        page.wait_for_function(
            "() => document.querySelector('#support-warning').innerText.includes('combination')",
            timeout=30_000,
        )
        assert page.inner_text("#effect-cards") != before
        assert "Extrapolated" in page.inner_text("#effect-cards")
        # the profile is not kept in the browser (Gradio's run history is off)
        stored = page.evaluate(
            "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
        )
        assert "ferritin" not in stored and "Extrapolated" not in stored
        browser.close()


def test_what_moves_it_controls_are_usable(app_url):
    with playwright.sync_playwright() as p:
        browser, page = _page(p, app_url)
        assert not page.locator("#move-field input").is_disabled()
        page.locator("#move-target").get_by_label("CRS risk difference").check()
        page.wait_for_function(
            "() => (document.querySelector('#moves-plot svg')?.getAttribute('aria-label') || '')"
            ".startsWith('CRS risk difference')",
            timeout=30_000,
        )
        assert "CRS risk difference" in page.locator("#moves-plot svg").get_attribute("aria-label")
        browser.close()


def test_crs_weight_follows_the_keyboard_and_the_phone_shows_the_answer_first(app_url):
    with playwright.sync_playwright() as p:
        browser, page = _page(p, app_url)
        open_tab(page, "Cohort and subgroups")
        before = page.inner_text("#policy-text")
        slider = page.locator("#crs-weight input[type=range]")
        slider.focus()
        for _ in range(6):
            slider.press("ArrowRight")
        page.wait_for_function(
            "(b) => document.querySelector('#policy-text').innerText !== b",
            arg=before,
            timeout=30_000,
        )
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto(app_url)
        wait_for_app(phone)
        # the answer comes before the 19 form fields, about one screen down (was 2,560 px)
        assert phone.locator("#support-warning").bounding_box()["y"] < 844
        assert phone.locator("#effect-cards").bounding_box()["y"] < 1000
        assert (
            phone.locator("#effect-cards").bounding_box()["y"]
            < phone.locator("#field-age").bounding_box()["y"]
        )
        browser.close()


def test_the_report_opens_in_a_new_tab(app_url):
    with playwright.sync_playwright() as p:
        browser, page = _page(p, app_url)
        open_tab(page, "Attributions and diagnostics")
        with page.context.expect_page(timeout=30_000) as opened:
            page.locator("#open-report").click()
        report = opened.value
        report.wait_for_function("() => location.href.startsWith('blob:')", timeout=30_000)
        report.wait_for_load_state()
        assert "CAR-T" in report.content() and report.url.startswith("blob:")
        browser.close()


# --------------------------------------------------------------------------------------------------
# The figures agree with the cards after a change; uploads of another type


def test_the_figures_follow_the_cards_to_the_same_profile(app_url):
    """One field change: the cards, the curves (their alt text) and the icon arrays show the
    same per-arm survival at 12 months."""
    with playwright.sync_playwright() as p:
        browser, page = _page(p, app_url)
        before = page.inner_text("#effect-cards")
        _set_number(page, "age", 83)
        _wait_cards_change(page, before)
        cards = _card_numbers(page)
        a = next(v for k, v in cards.items() if k == "alive at 12 months with car-t")
        b = next(v for k, v in cards.items() if k == "alive at 12 months with teclistamab")
        page.wait_for_function(
            "(t) => (document.querySelector('#curves-plot svg')?.getAttribute('aria-label')"
            " || '').includes(t)",
            arg=f"{a:.0f}% alive with CAR-T",
            timeout=30_000,
        )
        label = page.locator("#curves-plot svg").get_attribute("aria-label")
        assert f"and {b:.0f}% with teclistamab" in label
        page.wait_for_function(
            "(t) => document.querySelector('#icon-array').innerText.includes(t)",
            arg=f"{a:.0f} alive at 12 months",
            timeout=30_000,
        )
        browser.close()


def test_an_upload_of_another_type_is_named_with_the_accepted_types(app_url, tmp_path):
    """Gradio's upload box drops a .txt without a word; the page says what it refused and
    what it accepts, and a .csv afterwards clears the message and is checked as usual."""
    notes = tmp_path / "notes.txt"
    notes.write_text("patient_id,treatment,age\np1,cart,60\n")
    table = tmp_path / "cohort.csv"
    table.write_text("patient_id,treatment,age\np1,cart,60\n")
    with playwright.sync_playwright() as p:
        browser, page = _page(p, app_url)
        open_tab(page, "Your data")
        verdict = page.inner_text("#upload-verdict")
        page.locator("#upload-file input[type=file]").set_input_files(str(notes))
        page.wait_for_selector("#upload-type-message [role=alert]", timeout=30_000)
        message = page.inner_text("#upload-type-message")
        assert "notes.txt was not uploaded" in message
        for accepted in (".csv", ".parquet", ".pq", ".duckdb"):
            assert accepted in message
        assert page.inner_text("#upload-verdict") == verdict  # nothing was checked or run
        page.locator("#upload-file input[type=file]").set_input_files(str(table))
        page.wait_for_function(
            "(v) => document.querySelector('#upload-verdict').innerText !== v",
            arg=verdict,
            timeout=30_000,
        )
        assert page.locator("#upload-type-message [role=alert]").count() == 0
        browser.close()
