"""The explorer in headless Chromium (Playwright): set a profile value, see the outputs change,
and a screenshot of every tab."""

from __future__ import annotations

import struct

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
            "(b) => document.querySelector('#effect-cards').innerText !== b", arg=before,
            timeout=30_000,
        )  # fmt: skip
        assert page.inner_text("#effect-cards") != before
        assert page.inner_text("#plain-summary") != summary_before
        assert page.locator("#icon-array svg").count() == 200  # two arrays of 100 people
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
