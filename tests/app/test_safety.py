"""Privacy and safety of the explorer: analytics off, no share link, nothing served by path,
uploads read as data only (size limit, no pickles), configs only from the configs folder; and the
small helpers the tabs rely on (newest run folder, icon counts)."""

from __future__ import annotations

import os
import pickle

import pytest

from hte.app import your_data
from hte.app.icons import icon_array, rounded_counts
from hte.app.run_view import RunFolderError, newest_run
from hte.app.state import AppContext


def test_launched_app_is_private(served, small_run):
    demo, url = served
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert demo.analytics_enabled is False
    assert demo.share is False and demo.share_url is None
    assert demo.run_history is False  # no call's inputs or outputs kept in the browser
    from hte.app.launch import QUEUE_IDLE_POLL_S

    assert demo._queue.sleep_when_free == QUEUE_IDLE_POLL_S  # the idle queue loop does not spin
    assert url.startswith("http://127.0.0.1:")
    # nothing is served by its path: run-folder files reach a session through private copies
    assert list(demo.allowed_paths) == []


def test_run_folder_files_are_shown_through_private_copies(served, small_run):
    import httpx

    _, url = served
    for name in ("effects.parquet", "metrics.json", "config.resolved.yaml"):
        response = httpx.get(f"{url}gradio_api/file={small_run / name}")
        assert response.status_code in (403, 404), name


def test_files_outside_the_run_folder_are_not_served(served, tmp_path):
    import httpx

    secret = tmp_path.parent / "secret.txt"  # neither the run folder nor an allowed path
    secret.write_text("patient data")
    _, url = served
    response = httpx.get(f"{url}gradio_api/file={secret}")
    assert response.status_code in (403, 404)
    assert "patient data" not in response.text


def test_upload_is_read_as_data_never_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):  # would run on unpickling
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    for name in ("cohort.csv", "cohort.parquet", "cohort.pkl"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(Boom()))
        check = your_data.check_upload(path)
        assert not check.ok and check.problems.iloc[0]["column"] == "(file)", name
    assert not (tmp_path / "pwned").exists()


def test_upload_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(your_data, "MAX_UPLOAD_BYTES", 100)
    path = tmp_path / "big.csv"
    path.write_text("patient_id,treatment,age\n" + "x,cart,50\n" * 20)
    check = your_data.check_upload(path)
    assert not check.ok and "limit" in check.problems.iloc[0]["rule"]


def test_configs_only_from_the_configs_folder(small_run, tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\n")
    context = AppContext.create(small_run, configs_dir=tmp_path)
    assert context.config_choices() == ["a.yaml"]
    assert context.config_path("a.yaml") == tmp_path.resolve() / "a.yaml"
    for bad in ("../a.yaml", "/etc/passwd", "b.yaml"):
        with pytest.raises(RunFolderError):
            context.config_path(bad)


def test_newest_run_skips_unfinished_folders(tmp_path):
    for run_id, finished in (
        ("20260101T000000Z-aaaa", True),
        ("20260102T000000Z-bbbb", True),
        ("20260102T000000Z-bbbb-2", True),
        ("20260103T000000Z-cccc", False),
        ("20260104T000000Z-dddd.partial", True),  # every file, killed before the rename
    ):
        folder = tmp_path / "exp" / run_id
        folder.mkdir(parents=True)
        if finished:
            (folder / "config.resolved.yaml").write_text("name: exp\n")
            (folder / "metrics.json").write_text("{}")
            (folder / "complete.json").write_text("{}")
    assert newest_run(tmp_path, "exp").name == "20260102T000000Z-bbbb-2"
    assert newest_run(tmp_path, "other") is None


@pytest.mark.parametrize("shares", [[0.874, 0.126], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.6], [0.0, 1.0]])
def test_icon_counts_add_up_to_100(shares):
    counts = rounded_counts(shares)
    assert sum(counts) == 100 and all(c >= 0 for c in counts)
    assert all(
        abs(c - 100 * s) <= 1 for c, s in zip(counts, shares, strict=True) if sum(shares) <= 1
    )


def test_icon_array_draws_100_people():
    html = icon_array([("alive", 87, "#1b6ca8"), ("died", 13, "#d1d5db")], "CAR-T")
    assert html.count("<use ") == 100 and "87 alive" in html and "13 died" in html
    assert html.count('fill="#1b6ca8"') == 87 and html.count('fill="#d1d5db"') == 13


def test_the_run_picker_accepts_only_finished_runs_under_the_output_root(small_run, tmp_path):
    """Run folders named by a browser's local storage: the launch run and finished runs under
    the app's output root; anything else (another folder, an unfinished run) is left out."""
    from hte.app import callbacks as cb
    from hte.app.state import AppContext

    context = AppContext.create(small_run)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    unfinished = small_run.parent / "20260101T000000Z-deadbeef.partial"
    unfinished.mkdir()
    try:
        choices = cb.run_choices(
            context, [str(outside), str(unfinished), "/etc", 5, str(small_run)]
        )
        assert [v for _, v in choices] == [str(context.run_dir)]
        with pytest.raises(Exception, match="not available"):
            cb.pick_run(context, str(outside), [str(outside)])
        assert cb.pick_run(context, str(context.run_dir), []) == str(context.run_dir)
    finally:
        unfinished.rmdir()


def test_a_form_state_seen_before_is_answered_from_the_cache_unchanged(
    small_run, hte_home, monkeypatch
):
    from hte.app import callbacks as cb
    from hte.app.state import AppContext

    monkeypatch.setenv("HTE_HOME", str(hte_home))  # the run's signing key

    context = AppContext.create(small_run)
    explorer = context.explorer()
    names = [f.name for f in explorer.fields()]
    values = cb.default_values(context, str(small_run))
    first = cb.whatif_outputs(context, str(small_run), names, values, "age", "survival")
    first[0] = "changed by a caller"  # a caller's list is its own
    again = cb.whatif_outputs(context, str(small_run), names, values, "age", "survival")
    assert again[0] == "" and again[1:] == first[1:]
    other = list(values)
    other[names.index("age")] = 60
    changed = cb.whatif_outputs(context, str(small_run), names, other, "age", "survival")
    assert changed[len(names) + 1] != again[len(names) + 1]  # the cards follow the profile
