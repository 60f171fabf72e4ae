"""Screenshots of every tab of a launched explorer, in headless Chromium (Playwright).

``python -m hte.app.screenshots OUT_DIR [RUN_DIR]`` launches the app on a free localhost port for
RUN_DIR (default: the newest run of configs/default.yaml) and writes one PNG per tab to OUT_DIR
(the README's pictures live in docs/screenshots/). The browser tests call ``take_screenshots``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

TABS = (
    ("whatif", "Patient what-if"),
    ("cohort", "Cohort and subgroups"),
    ("diagnostics", "Attributions and diagnostics"),
    ("your_data", "Your data"),
)
CHROMIUM_ARGS = ["--no-sandbox", "--headless"]
VIEWPORT = {"width": 1440, "height": 1000}


def chromium_path() -> str | None:
    """Debian's chromium when present (Playwright's own download otherwise)."""
    for name in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(name).exists():
            return name
    return shutil.which("chromium")


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def wait_for_app(page, timeout_ms: int = 60_000) -> None:
    """Until the what-if tab has painted its effect cards (the render runs on page load)."""
    page.wait_for_selector("#effect-cards .hte-cards", timeout=timeout_ms)


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title).click()
    page.wait_for_timeout(1200)  # plots are drawn client-side after the tab becomes visible


def take_screenshots(
    url: str, out_dir: Path, example: str | None = None, upload: Path | None = None
) -> list[Path]:
    """One full-page PNG per tab; ``example`` picks an example profile first (by name),
    ``upload`` is a cohort file checked in the "Your data" tab before its screenshot."""
    from playwright.sync_api import sync_playwright

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url)
        wait_for_app(page)
        if example:
            choose_example(page, example)
        for slug, title in TABS:
            open_tab(page, title)
            if slug == "your_data" and upload is not None:
                page.set_input_files("#upload-file input[type=file]", str(upload))
                page.wait_for_selector("#problems-table table", timeout=30_000)
                page.wait_for_timeout(500)
            path = out_dir / f"{slug}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        browser.close()
    return paths


def choose_example(page, name: str) -> None:
    """Pick an example profile in the what-if form and wait for the outputs to update."""
    before = page.inner_text("#effect-cards")
    page.click("#example-choice input")
    page.get_by_role("option", name=name).click()
    page.wait_for_function(
        "(b) => document.querySelector('#effect-cards').innerText !== b",
        arg=before,
        timeout=30_000,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hte.app.screenshots", description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("run_dir", type=Path, nargs="?", default=None)
    parser.add_argument("--example", default="Older patient with extramedullary disease")
    args = parser.parse_args(argv)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import tempfile

    from hte.app.launch import default_run, serve

    run_dir = args.run_dir or default_run()
    port = _free_port()
    demo = serve(run_dir, port=port, block=False, quiet=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bad = example_bad_cohort(Path(tmp) / "my_cohort.csv")
            url = f"http://127.0.0.1:{port}/"
            for path in take_screenshots(url, args.out_dir, args.example, bad):
                print(path)
    finally:
        demo.close()
    return 0


def example_bad_cohort(path: Path) -> Path:
    """A synthetic cohort with three typical export mistakes, to show the problems table."""
    from hte.data.simulate import simulate_cohort

    cohort = simulate_cohort(200, seed=7)
    cohort.loc[[4, 17], "ecog"] = 5
    cohort.loc[9, "treatment"] = "CAR-T"
    cohort.loc[30, "os_months"] = -1.0
    cohort.to_csv(path, index=False)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
