"""Latency of the what-if endpoint on a warm app: ``python -m benchmarks.app_latency RUN_DIR``.

Launches the explorer (``python app.py RUN_DIR``) in its own process on a free localhost port,
warms it (models loaded at launch, a few queries), then through ``gradio_client``: 200 sequential
``profile_effects`` queries (profiles drawn from the fields' observed ranges with a fixed seed) ->
p50/p95/max latency, and 20 concurrent clients (each its own ``Client``, 10 queries each) ->
errors and latency under load; then 50 field changes of the what-if form in headless Chromium
(perceived latency: typed value to updated cards).
Writes the figures to experiments/benchmarks/app_latency.md (``--out`` to change).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path("experiments/benchmarks/app_latency.md")
GOAL_P95_MS = 300.0


def random_profiles(fields, n: int, seed: int) -> list[dict]:
    """``n`` profiles with every field drawn within its observed range (1st-99th percentile)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        profile: dict = {}
        for f in fields:
            if f.kind == "boolean":
                profile[f.name] = bool(rng.integers(2))
            elif f.kind == "category":
                profile[f.name] = str(rng.choice(list(f.choices)))
            else:
                lo = f.p01 if f.p01 is not None else f.minimum
                hi = f.p99 if f.p99 is not None else f.maximum
                x = float(rng.uniform(lo, hi))
                profile[f.name] = round(x) if f.kind == "integer" else round(x, 2)
        out.append(profile)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run_dir: Path, port: int, timeout: float = 180.0) -> subprocess.Popen:
    """``python app.py RUN_DIR --port PORT`` in its own process (its own interpreter and GIL, as
    a user runs it); returns once the app answers."""
    import httpx

    code = "import sys; from hte.app import main; sys.exit(main())"
    server = subprocess.Popen(
        [sys.executable, "-c", code, str(run_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with code {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"the app did not answer on port {port} within {timeout:.0f} s")


def _timed(client, profile: dict) -> float:
    start = time.perf_counter()
    client.predict(profile, api_name="/profile_effects")
    return 1000.0 * (time.perf_counter() - start)


def direct_timings(explorer, profiles: list[dict]) -> np.ndarray:
    """Milliseconds of ``explorer.effects(profile).to_json()`` in-process (no HTTP, no queue)."""
    for p in profiles[:5]:
        explorer.effects(p).to_json()
    out = []
    for p in profiles:
        start = time.perf_counter()
        explorer.effects(p).to_json()
        out.append(1000.0 * (time.perf_counter() - start))
    return np.array(out)


def sequential(url: str, profiles: list[dict]) -> np.ndarray:
    from gradio_client import Client

    client = Client(url, verbose=False, analytics_enabled=False)
    for p in profiles[:5]:  # warm the client's connection and the explorer's caches
        client.predict(p, api_name="/profile_effects")
    return np.array([_timed(client, p) for p in profiles])


def concurrent(url: str, profiles: list[dict], n_clients: int, per_client: int):
    """Latencies (ms) of the answered queries and the error messages, over ``n_clients``
    threads each with its own client."""
    from gradio_client import Client

    def one(k: int) -> tuple[list[float], list[str]]:
        times, errors = [], []
        try:
            client = Client(url, verbose=False, analytics_enabled=False)
        except Exception as exc:
            return [], [f"client {k}: {exc}"] * per_client
        for j in range(per_client):
            try:
                times.append(_timed(client, profiles[(k * per_client + j) % len(profiles)]))
            except Exception as exc:
                errors.append(f"client {k}: {type(exc).__name__}: {exc}")
        return times, errors

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n_clients) as pool:
        results = list(pool.map(one, range(n_clients)))
    wall = time.perf_counter() - start
    times = np.array([t for r in results for t in r[0]])
    errors = [e for r in results for e in r[1]]
    return times, errors, wall


def browser_latency(url: str, n_changes: int = 50, field: str = "age") -> np.ndarray:
    """Perceived latency (ms) of one field change in headless Chromium: from typing a new value
    into the what-if form (and Enter) until the effect cards show the new answer, ``n_changes``
    times with alternating values inside the field's range (Playwright's own round trips
    included, so slightly pessimistic)."""
    from playwright.sync_api import sync_playwright

    from hte.app.screenshots import launch_browser, wait_for_app

    values = [55, 80, 60, 85, 50, 75, 65, 70]
    out = []
    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(url)
        wait_for_app(page, 120_000)
        box = page.locator(f"#field-{field} input")
        for i in range(n_changes + 3):  # three warm-up changes
            before = page.inner_text("#effect-cards")
            start = time.perf_counter()
            box.fill(str(values[i % len(values)]))
            box.press("Enter")
            page.wait_for_function(
                "(b) => { const c = document.querySelector('#effect-cards');"
                " return c.innerText !== b && c.querySelector('.hte-cards'); }",
                arg=before, timeout=30_000, polling="raf",
            )  # fmt: skip
            if i >= 3:
                out.append(1000.0 * (time.perf_counter() - start))
        browser.close()
    return np.array(out)


def _stats(ms: np.ndarray) -> dict:
    if ms.size == 0:
        return {"n": 0}
    return {
        "n": int(ms.size),
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "max": float(ms.max()),
        "mean": float(ms.mean()),
    }


def report(run_dir: Path, seq: dict, conc: dict, errors: list[str], wall: float, args,
           direct: dict, browser: dict | None = None) -> str:  # fmt: skip
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    verdict = "meets" if seq.get("p95", 1e9) < GOAL_P95_MS else "misses"
    lines = [
        "# What-if latency of the explorer (`profile_effects` on a warm app)",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with "
        f"`python -m benchmarks.app_latency {run_dir}` on {os.cpu_count()} cores "
        f"(load average {load[0]:.1f} at the end: the machine was shared), Python "
        f"{platform.python_version()}. The app in its own process (`python app.py`), the "
        "clients in the benchmark's process, over HTTP on 127.0.0.1 through gradio_client "
        "(JSON encoding and all). The first row times the explorer alone, in-process.",
        "",
        f"Run folder: `{run_dir}`.",
        "",
        "| test | queries | p50 (ms) | p95 (ms) | max (ms) | errors |",
        "|---|---|---|---|---|---|",
        f"| explorer alone (in-process, no HTTP) | {direct['n']} | {direct['p50']:.0f} | "
        f"{direct['p95']:.0f} | {direct['max']:.0f} | 0 |",
        f"| sequential, one client | {seq['n']} | {seq['p50']:.0f} | {seq['p95']:.0f} | "
        f"{seq['max']:.0f} | 0 |",
        f"| {args.clients} concurrent clients x {args.per_client} | {conc.get('n', 0)} | "
        f"{conc.get('p50', float('nan')):.0f} | {conc.get('p95', float('nan')):.0f} | "
        f"{conc.get('max', float('nan')):.0f} | {len(errors)} |",
        *(
            [
                f"| one field change in Chromium (typed, until the cards show it) | "
                f"{browser['n']} | {browser['p50']:.0f} | {browser['p95']:.0f} | "
                f"{browser['max']:.0f} | 0 |"
            ]
            if browser
            else []
        ),
        "",
        f"Goal: p95 < {GOAL_P95_MS:.0f} ms sequentially on 2 cores: **{verdict}** it "
        f"(p95 {seq['p95']:.0f} ms). Concurrent: {conc.get('n', 0)} answers in {wall:.1f} s "
        f"wall time, {len(errors)} errors.",
    ]
    if errors:
        lines += ["", "Errors (first 5):", *[f"- {e}" for e in errors[:5]]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.app_latency", description=__doc__)
    parser.add_argument("run_dir", type=Path, nargs="?", default=None,
                        help="run folder (default: newest run of configs/default.yaml, run "
                        "first if there is none)")  # fmt: skip
    parser.add_argument("--n", type=int, default=200, help="sequential queries (default 200)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--per-client", type=int, default=10, help="queries per client")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--browser-changes", type=int, default=50,
                        help="field changes timed in headless Chromium (0 to skip)")  # fmt: skip
    args = parser.parse_args(argv)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if args.run_dir is None:
        from hte.app.launch import default_run

        args.run_dir = default_run()
    from hte.app.state import AppContext

    explorer = AppContext.create(args.run_dir).explorer()
    profiles = random_profiles(
        explorer.fields(), max(args.n, args.clients * args.per_client), args.seed
    )
    direct = _stats(direct_timings(explorer, profiles[: args.n]))
    port = _free_port()
    server = start_server(Path(args.run_dir), port)
    url = f"http://127.0.0.1:{port}/"
    try:
        seq = _stats(sequential(url, profiles[: args.n]))
        times, errors, wall = concurrent(url, profiles, args.clients, args.per_client)
        conc = _stats(times)
        browser = (
            _stats(browser_latency(url, args.browser_changes)) if args.browser_changes else None
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = report(Path(args.run_dir), seq, conc, errors, wall, args, direct, browser)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
