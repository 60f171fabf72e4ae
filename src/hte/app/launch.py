"""Starting the explorer: pick the run folder (by default the newest run of configs/default.yaml,
running it first when there is none), build the Blocks and serve them on localhost.

Privacy: Gradio analytics are off (environment and Blocks), no share link unless asked, and no
folder is an allowed path: nothing on disk can be fetched through ``/gradio_api/file=`` by its path.
What a tab shows from a run folder (figures, the report) reaches the browser through a private copy
(``AppContext.servable``) in Gradio's content-addressed cache, and only the session that asked is
given its address. The upload endpoints read only files Gradio received through its upload route
(``your_data.received_upload``), never a path a caller names.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = Path("configs/default.yaml")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
JSON_ROUTE = "/hte/profile_effects"  # plain JSON what-if answers (add_json_route)
QUEUE_IDLE_POLL_S = 0.01  # how often Gradio's idle queue loop looks for work (its default: 1 ms)
MAX_PROFILE_BYTES = 65_536  # a profile is a few hundred bytes; larger bodies are refused


def default_run(config_path: Path = DEFAULT_CONFIG, *, echo=print) -> Path:
    """The newest run folder of ``config_path`` under its output root; the config is run first
    (with the pipeline's progress bar on the console) when it has no finished run yet."""
    from hte.app.run_view import newest_run
    from hte.config import load_config
    from hte.pipeline import run_experiment

    config = load_config(config_path)
    found = newest_run(Path(config.output.root), config.name)
    if found is not None:
        return found
    echo(
        f"No run of {config_path} under {config.output.root}/{config.name}: running it now "
        "(the default experiment takes a few minutes on 2 cores)."
    )
    result = run_experiment(config, progress=True)
    return result.run_dir


def serve(
    run_dir: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    share: bool = False,
    configs_dir: Path | None = None,
    output_root: Path | None = None,
    block: bool = True,
    quiet: bool = False,
):
    """Build the app for ``run_dir`` and launch it; returns the Blocks (``block=False`` returns
    at once with the server running in a thread, for tests and benchmarks)."""
    from hte.app.layout import APP_CSS, UPLOAD_TYPES_JS, build_app, theme
    from hte.app.state import AppContext
    from hte.app.your_data import MAX_UPLOAD_MB

    context = AppContext.create(run_dir, configs_dir=configs_dir, output_root=output_root)
    try:  # load the run's models and answer the default profile once, before the first request
        explorer = context.explorer()  # (the first answer pays one-off costs: thread pools, caches)
        explorer.effects(explorer.default_profile())
    except Exception as exc:  # any failure: a warm-up only, the what-if tab retries and shows it
        print(f"note: the what-if explorer is not available for {context.run_dir}: {exc}")
    demo = build_app(context)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        inbrowser=False,
        prevent_thread_lock=True,  # the JSON route is added after the server starts
        allowed_paths=[],  # nothing served by path; see the module docstring
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        show_error=True,
        quiet=quiet,
        footer_links=["api"],
        enable_monitoring=False,
        mcp_server=False,
        # Gradio's run history would keep every call's inputs and outputs (patient profiles)
        # in the browser's storage and offer to copy them to a Hugging Face bucket; writing it
        # also cost the page ~30 ms of script per what-if change (Chromium's CPU profile)
        run_history=False,
        ssr_mode=False,
        pwa=False,
        theme=theme(),
        css=APP_CSS,
        js=UPLOAD_TYPES_JS,
    )
    # Gradio's queue loop checks for work every 1 ms when idle: ~8% of a core, taken from the
    # what-if answers it shares the event loop with. 10 ms is still nothing beside an analysis
    # run or a gradio_client call (which polls every 50 ms).
    if hasattr(demo._queue, "sleep_when_free"):
        demo._queue.sleep_when_free = QUEUE_IDLE_POLL_S
    add_json_route(demo, context)
    if block:
        demo.block_thread()
    return demo


def add_json_route(demo, context) -> None:
    """``POST /hte/profile_effects`` with a profile object as the body: the what-if answer as
    plain JSON, for clients that do not speak Gradio's queue protocol (and faster under many
    concurrent clients: no per-request Gradio processing)."""
    from hte.app.callbacks import rest_profile_effects

    answer = rest_profile_effects(context)

    async def profile_effects(request):  # a Starlette route: the raw request
        body = bytearray()
        async for chunk in request.stream():  # read at most MAX_PROFILE_BYTES, whatever it says
            body += chunk
            if len(body) > MAX_PROFILE_BYTES:
                return json_response(
                    {"error": f"invalid profile: the body is over {MAX_PROFILE_BYTES} bytes"}, 413
                )
        try:
            profile = json.loads(body)
        except ValueError:
            return json_response({"error": "invalid profile: the body is not JSON"}, 422)
        status, answer_body = answer(profile)
        return json_response(answer_body, status)

    demo.app.add_route(JSON_ROUTE, profile_effects, methods=["POST"])


def json_response(body: dict, status: int = 200):
    """A JSON response written by orjson: an answer is ~12 kB of numbers, which the standard
    library's encoder took ~0.45 ms to write (a twentieth of the answer's CPU)."""
    import orjson
    from starlette.responses import Response

    return Response(orjson.dumps(body), status, media_type="application/json")


def launch(
    run_dir: str | Path | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    share: bool = False,
):
    """Launch the explorer on ``host:port`` for ``run_dir`` (default: the newest run of
    configs/default.yaml, run first if there is none). Blocks until stopped."""
    run = Path(run_dir) if run_dir is not None else default_run()
    print(f"hte explorer: run folder {run}")
    print(
        f"open http://{host}:{port} (research tool on observational data, not a treatment "
        "recommendation)"
    )
    return serve(run, host=host, port=port, share=share, block=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python app.py [RUN_DIR] [--host H] [--port N] [--share]``."""
    parser = argparse.ArgumentParser(
        prog="python app.py", description="Launch the hte explorer (Gradio) for a run folder."
    )
    parser.add_argument(
        "run_dir",
        nargs="?",
        type=Path,
        default=None,
        help="run folder (default: newest run of configs/default.yaml)",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="interface to bind (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 7860)")
    parser.add_argument(
        "--share", action="store_true", help="also open a public Gradio share link (off by default)"
    )
    args = parser.parse_args(argv)
    from hte.app.run_view import RunFolderError, RunView

    if args.run_dir is not None:
        try:
            RunView.open(args.run_dir)
        except RunFolderError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if not port_is_free(args.host, args.port):
        print(
            f"error: port {args.port} on {args.host} is in use (another explorer or program?); "
            "choose another with --port",
            file=sys.stderr,
        )
        return 1
    try:
        launch(args.run_dir, host=args.host, port=args.port, share=args.share)
    except RunFolderError as exc:  # the default run folder, written by an older hte
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound now (checked before a long start, for a plain message
    instead of the server's traceback)."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
