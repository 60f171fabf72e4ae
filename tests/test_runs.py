"""Run folders: canonical JSON, run ids, fingerprints, and model files guarded by a signed manifest."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from hte.runs import (
    ModelIntegrityError,
    ModelStore,
    canonical_json,
    create_run_dir,
    fingerprint_file,
    fingerprint_frame,
    load_model,
    make_run_id,
    round_floats,
)


@pytest.fixture(autouse=True)
def _own_key(tmp_path, monkeypatch):
    """Every test signs with a fresh key of its own (never the user's real key)."""
    monkeypatch.setenv("HTE_HOME", str(tmp_path / "hte_home"))


def test_round_floats_makes_json_ready_values():
    out = round_floats(
        {"a": np.float64(1 / 3), 2: [np.int64(4), np.nan, float("inf")], "b": (np.bool_(True),)}
    )
    assert out == {"a": 0.3333333333, "2": [4, None, None], "b": [True]}


def test_canonical_json_is_byte_stable_and_sorted():
    a = {"z": 1.0, "a": {"y": [1, 2], "b": 0.1 + 0.2}}
    b = {"a": {"b": 0.30000000000000004, "y": [1, 2]}, "z": 1.0}
    assert canonical_json(a) == canonical_json(b)
    assert list(json.loads(canonical_json(a))) == ["a", "z"]


def test_run_id_is_timestamp_and_config_hash():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    rid = make_run_id({"name": "x", "n": 1}, now)
    assert rid.startswith("20260102T030405Z-") and len(rid.split("-")[1]) == 8
    assert make_run_id({"name": "x", "n": 1}, now) == rid
    assert make_run_id({"name": "x", "n": 2}, now) != rid


def test_create_run_dir_never_reuses_a_folder(tmp_path):
    first = create_run_dir(tmp_path, "exp", "rid")
    second = create_run_dir(tmp_path, "exp", "rid")
    assert first.name == "rid" and second.name == "rid-2"
    assert (first / "models").is_dir() and (first / "figures").is_dir()


def test_fingerprints_see_every_value_and_the_file_bytes(tmp_path):
    df = pd.DataFrame({"patient_id": ["a", "b"], "age": [60.0, 70.0]})
    fp = fingerprint_frame(df)
    assert fp["n"] == 2 and fp["columns"] == ["patient_id", "age"]
    changed = df.copy()
    changed.loc[1, "age"] = 70.0 + 1e-12
    assert fingerprint_frame(changed)["sha256"] != fp["sha256"]
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    assert fingerprint_file(path, df)["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def _store(tmp_path):
    run_dir = create_run_dir(tmp_path, "exp", "rid")
    (run_dir / "config.resolved.yaml").write_text("name: exp\nevaluation: {alpha: 0.05}\n")
    (run_dir / "fingerprint.json").write_text('{"sha256": "abc"}\n')
    store = ModelStore(run_dir, "rid")
    store.save("decision/model.joblib", {"coef": [1.0, 2.0]}, role="estimator")
    store.write_manifest()
    return run_dir


def test_saved_model_loads_back(tmp_path):
    run_dir = _store(tmp_path)
    assert load_model(run_dir, "decision/model.joblib") == {"coef": [1.0, 2.0]}


def test_tampered_model_file_is_refused(tmp_path):
    run_dir = _store(tmp_path)
    path = run_dir / "models" / "decision" / "model.joblib"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match="has changed since `hte run` wrote it"):
        load_model(run_dir, "decision/model.joblib")


def test_file_not_in_the_manifest_is_refused(tmp_path):
    import joblib

    run_dir = _store(tmp_path)
    joblib.dump({"evil": True}, run_dir / "models" / "decision" / "other.joblib")
    with pytest.raises(ModelIntegrityError, match="not listed in the run's model manifest"):
        load_model(run_dir, "decision/other.joblib")


def test_edited_manifest_is_refused(tmp_path):
    """Someone swaps the model and updates the hash in the manifest: the signature breaks."""
    import joblib

    run_dir = _store(tmp_path)
    model = run_dir / "models" / "decision" / "model.joblib"
    joblib.dump({"coef": [9.0]}, model)
    manifest_path = run_dir / "models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["decision/model.joblib"]["sha256"] = hashlib.sha256(
        model.read_bytes()
    ).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="was not signed by hte"):
        load_model(run_dir, "decision/model.joblib")


def test_run_folder_signed_by_another_key_is_refused(tmp_path, monkeypatch):
    run_dir = _store(tmp_path)
    monkeypatch.setenv("HTE_HOME", str(tmp_path / "someone_else"))
    with pytest.raises(ModelIntegrityError, match="not signed by hte for this user"):
        load_model(run_dir, "decision/model.joblib")


def test_folder_without_manifest_is_refused(tmp_path):
    with pytest.raises(ModelIntegrityError, match="not a run folder written by `hte run`"):
        load_model(tmp_path, "model.joblib")


def test_models_copied_from_another_run_are_refused(tmp_path):
    """Each run's manifest is valid on its own; another run's models/ in this run is refused."""
    import shutil

    mine = _store(tmp_path / "a")
    other = _store(tmp_path / "b")
    (other / "fingerprint.json").write_text('{"sha256": "def"}\n')  # other data
    store = ModelStore(other, "rid")
    store.save("decision/model.joblib", {"coef": [9.0]}, role="estimator")
    store.write_manifest()
    shutil.rmtree(mine / "models")
    shutil.copytree(other / "models", mine / "models")
    with pytest.raises(ModelIntegrityError, match="models/ folder was copied from another run"):
        load_model(mine, "decision/model.joblib")


def test_edited_run_config_is_refused(tmp_path):
    run_dir = _store(tmp_path)
    config = run_dir / "config.resolved.yaml"
    config.write_text(config.read_text().replace("0.05", "0.5"))
    with pytest.raises(ModelIntegrityError, match=r"config\.resolved\.yaml is not the file"):
        load_model(run_dir, "decision/model.joblib")


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        '"a string"',
        '{"files": {}, "signature": 5}',
        '{"files": [], "signature": "x"}',
        "not json",
        '{"files": {}}',
    ],
)
def test_malformed_manifests_are_refused_plainly(tmp_path, text):
    run_dir = _store(tmp_path)
    (run_dir / "models" / "manifest.json").write_text(text)
    with pytest.raises(ModelIntegrityError, match="not a manifest written by hte"):
        load_model(run_dir, "decision/model.joblib")


def test_manifest_of_an_older_hte_is_refused_with_a_rerun_hint(tmp_path):
    from hte.runs.store import _signature, _signing_key

    run_dir = _store(tmp_path)
    path = run_dir / "models" / "manifest.json"
    body = json.loads(path.read_text())
    del body["signature"], body["run_files"]
    body["signature"] = _signature(body, _signing_key(create=False))
    path.write_text(json.dumps(body))
    with pytest.raises(ModelIntegrityError, match="older hte"):
        load_model(run_dir, "decision/model.joblib")
