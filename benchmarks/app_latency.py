"""Latency of the what-if endpoint on a warm app: ``python -m benchmarks.app_latency RUN_DIR``.

Launches the explorer (``python app.py RUN_DIR``) in its own process on a free localhost port,
warms it (models loaded at launch, a few queries), then: 50 field changes of the what-if form
in headless Chromium (first, on a machine the later phases have not loaded; perceived latency on
the page's own clock, from the field's input event to the frame that shows the new cards and
curves, and again with Playwright's round trips included); 200 sequential ``profile_effects``
queries through ``gradio_client`` (profiles drawn from the fields' observed ranges with a fixed
seed) -> p50/p95/max latency; 20 concurrent clients (each its own ``Client``, 10 queries each)
-> errors and latency under load; the same with plain HTTP POSTs, to Gradio's route and to the
app's JSON route; the gradio_clients again on profiles already asked (the app's cache). Each
phase uses profiles no earlier phase asked, and records the app process's CPU time and the load.
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

from hte.app.launch import JSON_ROUTE, QUEUE_IDLE_POLL_S

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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    return np.array([_timed(client, p) for p in profiles])


def _run_clients(one, n_clients: int) -> tuple[np.ndarray, list[str], float]:
    """Run ``one(k)`` -> (latencies, errors) for clients 0..n-1 in as many threads: all the
    latencies, all the errors and the wall time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n_clients) as pool:
        results = list(pool.map(one, range(n_clients)))
    wall = time.perf_counter() - start
    return np.array([t for r in results for t in r[0]]), [e for r in results for e in r[1]], wall


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

    return _run_clients(one, n_clients)


# In-page clock: from the field's ``input`` event (the moment the browser has the new value) to
# the first animation frame in which the output shows the new answer (the frame then painted).
# Armed before each change; polls once per frame, as a user's eye would see it.
ARM_PAGE_TIMER = """([field, outputs]) => {
  const state = window.__hteTimer || (window.__hteTimer = {});
  state.start = null;
  state.before = {};
  state.done = {};
  for (const sel of outputs) state.before[sel] = document.querySelector(sel).innerHTML;
  if (!state.listening) {
    document.querySelector(field).addEventListener('input', () => {
      const t = window.__hteTimer;
      if (t.start !== null) return;
      t.start = performance.now();
      const poll = () => {
        for (const sel of Object.keys(t.before)) {
          const el = document.querySelector(sel);
          if (!(sel in t.done) && el && el.innerHTML !== t.before[sel]
              && el.querySelector('.hte-cards, svg')) t.done[sel] = performance.now() - t.start;
        }
        if (Object.keys(t.done).length < Object.keys(t.before).length) requestAnimationFrame(poll);
      };
      requestAnimationFrame(poll);
    }, true);
    state.listening = true;
  }
}"""
PAGE_TIMES = "() => window.__hteTimer.done"
HARNESS = ("cards_harness", "curves_harness")  # the same changes on Playwright's clock


def browser_latency(
    url: str, n_changes: int = 50, field: str = "age", pid: int | None = None
) -> dict[str, np.ndarray | float]:
    """Latency (ms) of one field change in headless Chromium, ``n_changes`` times with
    alternating values inside the field's range, every value new to the app (none is answered
    from its cache); three warm-up changes first.

    Two clocks: ``cards`` / ``curves`` on the page's own clock (``ARM_PAGE_TIMER``: from the
    field's input event until the frame that shows the new effect cards, or the new survival
    curves; what the user perceives), and ``cards_harness`` / ``curves_harness`` from before
    Playwright's ``fill`` + ``Enter`` until its ``wait_for_function`` sees the change (adds
    Playwright's own round trips and actionability checks, ~100-250 ms per change). ``cpu_s``:
    the app process's (``pid``) CPU seconds over the timed changes (page load and warm-up
    excluded)."""
    from playwright.sync_api import sync_playwright

    from hte.app.screenshots import launch_browser, wait_for_app

    # distinct values (a golden-ratio walk over 45-85 years): every change is a profile the app
    # has not seen, so no answer comes from its cache
    values = [round(45 + 40 * ((0.5 + k * 0.6180339887) % 1), 1) for k in range(n_changes + 3)]
    outputs = ["#effect-cards", "#curves-plot"]
    times: dict[str, list[float]] = {k: [] for k in ("cards", "curves", *HARNESS)}
    changed = (
        "([sel, b]) => { const c = document.querySelector(sel);"
        " return c && c.innerHTML !== b && c.querySelector('.hte-cards, svg'); }"
    )
    field_input = f"#field-{field} input"
    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(url)
        wait_for_app(page, 120_000)
        box = page.locator(field_input)
        cpu_start = float("nan")
        for i in range(n_changes + 3):  # three warm-up changes
            if i == 3 and pid is not None:
                cpu_start = cpu_seconds(pid)
            before = [page.inner_html(sel) for sel in outputs]
            page.evaluate(ARM_PAGE_TIMER, [field_input, outputs])
            start = time.perf_counter()
            box.fill(str(values[i]))
            box.press("Enter")
            seen = []
            for sel, html in zip(outputs, before, strict=True):
                page.wait_for_function(changed, arg=[sel, html], timeout=30_000, polling="raf")
                seen.append(time.perf_counter())
            page.wait_for_function(
                f"() => Object.keys(window.__hteTimer.done).length === {len(outputs)}",
                timeout=30_000,
            )
            in_page = page.evaluate(PAGE_TIMES)
            if i >= 3:
                times["cards"].append(float(in_page[outputs[0]]))
                times["curves"].append(float(in_page[outputs[1]]))
                times["cards_harness"].append(1000.0 * (seen[0] - start))
                times["curves_harness"].append(1000.0 * (seen[1] - start))
        cpu = cpu_seconds(pid) - cpu_start if pid is not None else float("nan")
        browser.close()
    return {k: np.array(v) for k, v in times.items()} | {"cpu_s": cpu}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


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


def _row(name: str, st: dict, errors: int, phase: dict) -> str:
    if not st.get("n"):
        return f"| {name} | 0 | - | - | - | {errors} | - | - |"
    return (
        f"| {name} | {st['n']} | {st['p50']:.0f} | {st['p95']:.0f} | {st['max']:.0f} | "
        f"{errors} | {phase['cpu_ms']:.0f} | {phase['load'][0]:.1f} -> {phase['load'][1]:.1f} |"
    )


def report(
    run_dir: Path,
    rows: list[tuple[str, dict, int, dict]],
    wall: float,
    n_errors: int,
    errors: list[str],
    args,
) -> str:
    lines = [
        "# What-if latency of the explorer (`profile_effects` and the what-if form on a warm app)",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with "
        f"`python -m benchmarks.app_latency {run_dir}` on {os.cpu_count()} cores (the machine "
        f"is shared: see the load average beside each row), Python {platform.python_version()}. "
        "The app in its own process (`python app.py`), the clients in the benchmark's process, "
        "over HTTP on 127.0.0.1 through gradio_client (its queue protocol, JSON encoding and "
        "all; gradio_client polls for its answer every 50 ms, so it adds up to 50 ms per query) "
        "or plain HTTP POSTs to `/gradio_api/run/profile_effects` or to the app's JSON route "
        f"`{JSON_ROUTE}` (the profile as the body, the answer as JSON). Every query is a profile the "
        "app has not answered before (no row is served from its cache) unless the row says so. "
        "Server CPU: the app process's user + system CPU time over the row, less what it uses "
        f"idle ({1000 * IDLE['cpu_per_s']:.0f} ms per second here: Gradio's queue loop looks "
        f"for work every {1000 * QUEUE_IDLE_POLL_S:g} ms), per query.",
        "",
        f"Run folder: `{run_dir}`.",
        "",
        "| test | queries | p50 (ms) | p95 (ms) | max (ms) | errors | server CPU per query (ms) "
        "| load average (1 min) start -> end |",
        "|---|---|---|---|---|---|---|---|",
        *[_row(*r) for r in rows],
        "",
        f"Goal: p95 < {GOAL_P95_MS:.0f} ms with {args.clients} concurrent clients, no errors. "
        f"Concurrent (gradio_client): {wall:.1f} s wall time, {n_errors} errors.",
    ]
    if errors:
        lines += ["", "Errors (first 5):", *[f"- {e}" for e in errors[:5]]]
    return "\n".join(lines) + "\n"


def _gradio_post(http, profile: dict) -> None:
    r = http.post("gradio_api/run/profile_effects", json={"data": [profile]})
    r.raise_for_status()
    if "survival_difference" not in r.json()["data"][0]:
        raise ValueError(r.text[:200])


def _json_post(http, profile: dict) -> None:
    r = http.post(JSON_ROUTE.lstrip("/"), json=profile)
    r.raise_for_status()
    if "survival_difference" not in r.json():
        raise ValueError(r.text[:200])


def concurrent_http(
    url: str, profiles: list[dict], n_clients: int, per_client: int, post=_gradio_post
):
    """As ``concurrent`` with plain HTTP POSTs (``httpx``, one connection per client) to the
    Gradio endpoint's direct route (``_gradio_post``) or the app's JSON route (``_json_post``):
    what a script without gradio_client sees."""
    import httpx

    def one(k: int) -> tuple[list[float], list[str]]:
        times, errors = [], []
        with httpx.Client(base_url=url, timeout=60) as http:
            for j in range(per_client):
                p = profiles[(k * per_client + j) % len(profiles)]
                start = time.perf_counter()
                try:
                    post(http, p)
                    times.append(1000.0 * (time.perf_counter() - start))
                except Exception as exc:
                    errors.append(f"client {k}: {type(exc).__name__}: {exc}")
        return times, errors

    return _run_clients(one, n_clients)


class _Phase:
    """The server's CPU time and the load average over one phase."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        self.wall = time.perf_counter()
        self.cpu = cpu_seconds(self.pid)
        self.load = os.getloadavg()[0]
        self.out: dict = {}
        return self.out

    def __exit__(self, *exc):
        self.out["cpu_s"] = cpu_seconds(self.pid) - self.cpu
        self.out["wall_s"] = time.perf_counter() - self.wall
        self.out["load"] = (self.load, os.getloadavg()[0])
        return False


IDLE = {"cpu_per_s": 0.0}  # the app's CPU seconds per second while it answers nothing


def idle_rate(pid: int, seconds: float = 10.0) -> float:
    """The app process's CPU seconds per wall second while idle (Gradio's queue loop looks for
    work every ``QUEUE_IDLE_POLL_S``), to subtract from each phase: what remains is the work of
    the queries."""
    cpu, start = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu) / (time.perf_counter() - start)


def _per_query(phase: dict, n: int) -> dict:
    work = phase["cpu_s"] - IDLE["cpu_per_s"] * phase.get("wall_s", 0.0)
    return phase | {"cpu_ms": 1000.0 * work / max(n, 1)}


def browser_rows(url: str, n_changes: int, pid: int) -> list[tuple[str, dict, int, dict]]:
    """The table rows of ``browser_latency``: the page's clock first (the perceived latency),
    then the same changes with Playwright's round trips included."""
    with _Phase(pid) as ph:
        got = browser_latency(url, n_changes, pid=pid)
    ph["cpu_s"] = got["cpu_s"]  # over the timed changes only (not the page load)
    ph["wall_s"] = float(np.sum(got["curves_harness"])) / 1000.0
    phase = _per_query(ph, n_changes)
    what = {
        "cards": "until the effect cards show it (page clock: input event -> frame)",
        "curves": "until the survival curves show it too (page clock)",
        "cards_harness": "until the cards show it, Playwright's fill + Enter round trips included",
        "curves_harness": "until the curves show it, Playwright's round trips included",
    }
    return [
        (f"one field change in Chromium: {text}", _stats(got[key]), 0, phase)
        for key, text in what.items()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.app_latency", description=__doc__)
    parser.add_argument(
        "run_dir",
        type=Path,
        nargs="?",
        default=None,
        help="run folder (default: newest run of configs/default.yaml, run first if there is none)",
    )
    parser.add_argument("--n", type=int, default=200, help="sequential queries (default 200)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--per-client", type=int, default=10, help="queries per client")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--json-repeats",
        type=int,
        default=0,
        help="repeat the JSON-route phase this many more times, fresh profiles each (its p95 "
        "moves with the machine: one row says little)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--browser-changes",
        type=int,
        default=50,
        help="field changes timed in headless Chromium (0 to skip)",
    )
    args = parser.parse_args(argv)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if args.run_dir is None:
        from hte.app.launch import default_run

        args.run_dir = default_run()
    from hte.app.state import AppContext

    explorer = AppContext.create(args.run_dir).explorer()
    n_conc = args.clients * args.per_client
    # disjoint sets of profiles per phase, so no phase is answered from the app's cache
    profiles = random_profiles(explorer.fields(), args.n + 3 * n_conc, args.seed)
    seq_profiles = profiles[: args.n]
    conc_profiles = profiles[args.n : args.n + n_conc]
    http_profiles = profiles[args.n + n_conc : args.n + 2 * n_conc]
    json_profiles = profiles[args.n + 2 * n_conc :]
    start = time.process_time()
    direct_ms = direct_timings(explorer, seq_profiles)
    direct_cpu = {
        "cpu_ms": 1000.0 * (time.process_time() - start) / max(len(seq_profiles), 1),
        "load": (os.getloadavg()[0],) * 2,
    }
    port = _free_port()
    server = start_server(Path(args.run_dir), port)
    url = f"http://127.0.0.1:{port}/"
    rows = [("explorer alone (in-process, no HTTP)", _stats(direct_ms), 0, direct_cpu)]
    try:
        from gradio_client import Client

        warm = Client(url, verbose=False, analytics_enabled=False)
        for p in random_profiles(explorer.fields(), 5, args.seed + 1):
            warm.predict(p, api_name="/profile_effects")
        IDLE["cpu_per_s"] = idle_rate(server.pid)
        if args.browser_changes:  # first, before the concurrent phases load the machine
            rows += browser_rows(url, args.browser_changes, server.pid)
        with _Phase(server.pid) as ph:
            seq = _stats(sequential(url, seq_profiles))
        rows.append(("sequential, one gradio_client", seq, 0, _per_query(ph, args.n)))
        with _Phase(server.pid) as ph:
            times, errors, wall = concurrent(url, conc_profiles, args.clients, args.per_client)
        rows.append(
            (
                f"{args.clients} concurrent gradio_clients x {args.per_client}",
                _stats(times),
                len(errors),
                _per_query(ph, n_conc),
            )
        )
        with _Phase(server.pid) as ph:
            h_times, h_errors, _ = concurrent_http(
                url, http_profiles, args.clients, args.per_client
            )
        rows.append(
            (
                f"{args.clients} concurrent plain HTTP clients x {args.per_client}",
                _stats(h_times),
                len(h_errors),
                _per_query(ph, n_conc),
            )
        )
        with _Phase(server.pid) as ph:
            j_times, j_errors, _ = concurrent_http(
                url, json_profiles, args.clients, args.per_client, post=_json_post
            )
        rows.append(
            (
                f"{args.clients} concurrent plain HTTP clients x {args.per_client}, the JSON "
                f"route `{JSON_ROUTE}`",
                _stats(j_times),
                len(j_errors),
                _per_query(ph, n_conc),
            )
        )
        for k in range(args.json_repeats):
            again = random_profiles(explorer.fields(), n_conc, args.seed + 1000 + k)
            with _Phase(server.pid) as ph:
                k_times, k_errors, _ = concurrent_http(
                    url, again, args.clients, args.per_client, post=_json_post
                )
            j_errors += k_errors
            rows.append(
                (
                    f"the JSON route again, repeat {k + 1} (fresh profiles)",
                    _stats(k_times),
                    len(k_errors),
                    _per_query(ph, n_conc),
                )
            )
        with _Phase(server.pid) as ph:
            r_times, r_errors, _ = concurrent(url, conc_profiles, args.clients, args.per_client)
        rows.append(
            (
                f"{args.clients} concurrent gradio_clients x {args.per_client}, profiles "
                "asked before (from the cache)",
                _stats(r_times),
                len(r_errors),
                _per_query(ph, n_conc),
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    all_errors = errors + h_errors + j_errors + r_errors
    text = report(Path(args.run_dir), rows, wall, len(errors), all_errors, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
