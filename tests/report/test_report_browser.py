"""The report in a real headless browser (Chromium via Playwright): every section heading is
visible, and a full-page screenshot renders."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
SECTIONS = (
    "summary",
    "cohort",
    "averages",
    "cate",
    "benefit-harm",
    "subgroups",
    "heterogeneity",
    "robustness",
    "attributions",
    "provenance",
)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM}")
def test_every_section_heading_is_visible_in_chromium(small_report, tmp_path):
    shot = tmp_path / "report.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(small_report.resolve().as_uri())
            for anchor in SECTIONS:
                heading = page.locator(f"section#{anchor} > h2")
                heading.scroll_into_view_if_needed()
                assert heading.is_visible(), anchor
            # the contents stays in view (sticky) after scrolling to the end
            page.locator("section#provenance > h2").scroll_into_view_if_needed()
            assert page.locator("nav.toc a[href='#summary']").is_visible()
            broken = page.evaluate(
                "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                ".length"
            )
            assert broken == 0  # every embedded figure decodes
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    width, height = _png_size(shot)
    assert width == 1280 and height > 3000  # ten sections with figures, not a blank page
    assert shot.stat().st_size > 100_000
