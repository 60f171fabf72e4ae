"""Attacks on the explorer (issue 16 item 1, issue 15 item 5): each with the clear answer expected
and a check that nothing was read, written or served.

- the chain of issue 16: a FileData naming a server file (never uploaded) sent to ``check_upload``
  and ``run_upload``, then the upload run's effects fetched through ``/gradio_api/file=``;
- a real upload still works, and its results reach only the session that ran it;
- oversized, non-CSV and pickled uploads; file-route traversal; invalid API payloads.

One tiny run folder and one app on a free localhost port serve the whole module; its configs folder
holds one tiny config, so a run on an upload takes seconds.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

ROOT = Path(__file__).resolve().parents[2]
TINY = """\
name: tiny
data: {source: synthetic, n: 200}
outcomes:
  os: {enabled: false}
  crs: {enabled: true, any_grade: true, grade3: false}
estimators:
  - {name: logistic_interaction, kind: logistic_interaction, params: {penalty: 1.0}}
evaluation: {robustness: false}
explanation: {shap: false, subgroup_rules: false}
seeds: {global: 3}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(Blocks, url, output root, launch run folder, a secret server file)."""
    from hte.app import serve
    from hte.config import load_config
    from hte.data.simulate import simulate_cohort
    from hte.pipeline import run_experiment

    folder = tmp_path_factory.mktemp("app_attacks")
    mp = pytest.MonkeyPatch()
    mp.setenv("HTE_HOME", str(folder / "home"))
    configs = folder / "configs"
    configs.mkdir()
    (configs / "tiny.yaml").write_text(TINY)
    root = folder / "runs"
    run = run_experiment(load_config(configs / "tiny.yaml"), output_root=root, progress=False)
    secret = folder / "private" / "registry.csv"  # readable by the app's user, never uploaded
    secret.parent.mkdir()
    simulate_cohort(60, seed=9).to_csv(secret, index=False)
    port = _free_port()
    demo = serve(
        run.run_dir, port=port, block=False, quiet=True, configs_dir=configs, output_root=root
    )
    yield demo, f"http://127.0.0.1:{port}/", root, run.run_dir, secret
    demo.close()
    mp.undo()


@pytest.fixture()
def remote_client(site, monkeypatch):
    """A gradio_client whose machine cannot read the server's disk: FileData paths are sent as
    they are instead of being uploaded from the client's side first (a client on the same
    machine would read and upload the file itself, which is an ordinary upload)."""
    from gradio_client import Client
    from gradio_client.client import Endpoint

    monkeypatch.setattr(Endpoint, "_upload_file", lambda self, f, data_index: f)
    return Client(site[1], verbose=False, analytics_enabled=False)


@pytest.fixture()
def client(site):
    from gradio_client import Client

    return Client(site[1], verbose=False, analytics_enabled=False)


def _server_file(path: Path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}, "orig_name": "x.csv"}


def _tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")} if folder.exists() else set()


def _get(url: str, path: str) -> httpx.Response:
    return httpx.get(f"{url}gradio_api/file={path}", timeout=30)


# --------------------------------------------------------------------------------------------------
# The chain of issue 16 item 1


def test_server_path_chain_is_refused_at_every_step(site, remote_client):
    from gradio_client.exceptions import AppError

    _, url, root, run_dir, secret = site
    before = _tree(root)
    # 1. check_upload on a server path: refused, nothing about the file comes back
    with pytest.raises(AppError) as info:
        remote_client.predict(_server_file(secret), api_name="/check_upload")
    assert "not uploaded" in str(info.value) and "patients" not in str(info.value)
    # a missing path answers the same way (no existence probe)
    with pytest.raises(AppError) as missing:
        remote_client.predict(_server_file(secret.with_name("nope.csv")), api_name="/check_upload")
    assert "not uploaded" in str(missing.value) and "No such file" not in str(missing.value)
    # 2. run_upload on it: refused; nothing copied into uploads/, no run folder
    with pytest.raises(AppError) as info:
        remote_client.predict(_server_file(secret), "tiny.yaml", api_name="/run_upload")
    assert "not uploaded" in str(info.value)
    assert _tree(root) == before
    assert not (root / "uploads").exists() and not (root / "upload_tiny").exists()
    # 3. the file route serves nothing by path: not the launch run's per-patient effects, not
    # its config, not the server file
    for path in (run_dir / "effects.parquet", run_dir / "config.resolved.yaml", secret):
        response = _get(url, str(path))
        assert response.status_code in (403, 404), path
        assert b"PAR1" not in response.content and b"patient" not in response.content


def test_a_file_in_gradios_folder_that_was_not_uploaded_is_refused(site, tmp_path):
    """Our own rule under Gradio's: a file placed in Gradio's upload folder (its cache also holds
    files the app itself served) is not an upload unless the upload route received it."""
    import gradio as gr
    from gradio.utils import get_upload_folder

    from hte.app import callbacks as cb
    from hte.app.state import AppContext

    demo, _, root, run_dir, secret = site
    planted = Path(get_upload_folder()) / "not-an-upload" / "cohort.csv"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(secret.read_bytes())
    context = AppContext.create(run_dir, configs_dir=tmp_path, output_root=root)
    context.received_uploads = lambda: demo.upload_file_set
    for path in (planted, secret):
        with pytest.raises(gr.Error, match="not uploaded"):
            cb.check_upload_values(context, str(path))
        with pytest.raises(gr.Error, match="not uploaded"):
            cb.run_upload(context, str(path), "tiny.yaml", lambda *a, **k: None)
    planted.unlink()


def test_a_real_upload_runs_and_its_results_stay_in_its_session(site, client, tmp_path):
    from gradio_client import handle_file

    from hte.data.simulate import simulate_cohort

    _, url, root, _, _ = site
    path = tmp_path / "mine.csv"
    simulate_cohort(200, seed=4).to_csv(path, index=False)
    verdict = client.predict(handle_file(str(path)), api_name="/check_upload")[0]
    assert verdict.startswith("**Valid cohort:** 200 patients")
    status = client.predict(handle_file(str(path)), "tiny.yaml", api_name="/run_upload")
    assert status.startswith("Finished: new run folder")
    run_dir = Path(status.split("`")[1])
    assert run_dir.parent == root / "upload_tiny" and (run_dir / "effects.parquet").is_file()
    # another client (or this one) cannot fetch the run's files, nor the kept copy of the data
    for file in (
        run_dir / "effects.parquet",
        run_dir / "metrics.json",
        *sorted((root / "uploads").iterdir()),
    ):
        assert _get(url, str(file)).status_code in (403, 404), file


# --------------------------------------------------------------------------------------------------
# Uploads that are not cohorts


def test_oversized_upload_is_refused_before_it_is_read(site, tmp_path):
    _, url, root, _, _ = site
    big = tmp_path / "big.csv"
    with big.open("wb") as fh:
        fh.write(b"patient_id,treatment,age\n")
        fh.truncate(51 * 1024 * 1024)  # over the 50 MB limit
    with big.open("rb") as fh:
        response = httpx.post(
            f"{url}gradio_api/upload", files={"files": ("big.csv", fh)}, timeout=120
        )
    assert response.status_code == 413 and "maximum allowed size" in response.text
    assert not (root / "uploads").exists() or not any(
        p.stat().st_size > 50 * 2**20 for p in (root / "uploads").iterdir()
    )


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("cohort.csv", b"\x00\x01\x02\xff\xfe binary", "Cannot read the file"),
        ("cohort.parquet", b"\x80\x04\x95 not parquet, a pickle", "Cannot read the file"),
        ("empty.csv", b"", "Cannot read the file"),
    ],
)
def test_non_cohort_uploads_get_a_clear_message(site, client, tmp_path, name, content, expected):
    from gradio_client import handle_file

    root = site[2]
    before = _tree(root)
    path = tmp_path / name
    path.write_bytes(content)
    verdict, problems = client.predict(handle_file(str(path)), api_name="/check_upload")[:2]
    assert verdict.startswith(f"**{expected}"), verdict
    problems = problems.get("value", problems)
    assert problems["data"][0][0] == "(file)"
    assert _tree(root) == before


# --------------------------------------------------------------------------------------------------
# The file route and the API


def test_a_txt_upload_is_refused_with_the_accepted_types(site, client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    before = _tree(site[2])
    path = tmp_path / "notes.txt"
    path.write_text("patient_id,treatment,age\np1,cart,60\n")
    with pytest.raises(AppError, match=r"Invalid file type.*'\.csv', '\.parquet'"):
        client.predict(handle_file(str(path)), api_name="/check_upload")
    assert _tree(site[2]) == before


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../../../../etc/passwd",
        "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/proc/self/environ",
        "~/.local/share/hte/signing.key",
    ],
)
def test_file_route_traversal_is_refused(site, path):
    response = _get(site[1], path)
    assert response.status_code in (403, 404), path
    assert b"root:" not in response.content


@pytest.mark.parametrize(
    ("api_name", "args", "expected"),
    [
        ("/run_upload", (None, "tiny.yaml"), "upload a valid cohort"),
        ("/profile_effects", ({"age": "'; DROP TABLE"},), "field 'age'"),
        ("/profile_effects", ({"__class__": 1},), "field '__class__'"),
    ],
)
def test_invalid_api_payloads_get_an_error_naming_what_is_wrong(client, api_name, args, expected):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(*args, api_name=api_name)
    assert expected in str(info.value)


def test_unknown_config_names_are_refused(site, client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from hte.data.simulate import simulate_cohort

    root = site[2]
    path = tmp_path / "ok.csv"
    simulate_cohort(40, seed=2).to_csv(path, index=False)
    before = _tree(root / "upload_tiny")
    for name in ("../../etc/passwd", "/etc/passwd", "default.yaml"):
        with pytest.raises(AppError) as info:
            client.predict(handle_file(str(path)), name, api_name="/run_upload")
        assert "not in the list of choices" in str(info.value) or "unknown config" in str(
            info.value
        )
    assert _tree(root / "upload_tiny") == before


def test_malformed_requests_do_not_take_the_server_down(site):
    url = site[1]
    for body in ({"data": "not a list"}, {"data": [{"path": 5}]}, {"nodata": 1}, []):
        response = httpx.post(f"{url}gradio_api/call/check_upload", json=body, timeout=30)
        assert "Traceback" not in response.text
    assert httpx.get(url, timeout=30).status_code == 200


def test_a_busy_port_gets_a_plain_message(site, capsys):
    from hte.app.launch import main

    port = int(site[1].rstrip("/").rsplit(":", 1)[1])  # the module's app holds it
    assert main([str(site[3]), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err and "Traceback" not in err
