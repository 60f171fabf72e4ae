"""Adversarial experiment configs: each is refused by `hte run` (and `load_config` + the
pre-flight) with one message naming the key and the rule, fast, with no traceback, and nothing is
written: the working folder holds only what the test put there, and no code in the YAML runs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hte.cli import app
from hte.config import ConfigError, load_config
from hte.pipeline import run_experiment

runner = CliRunner()

GOOD = """\
name: adversarial
data: {source: synthetic, n: 200}
estimators:
  - {kind: cox_interaction}
"""

BOMB = """\
name: bomb
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
estimators: [{kind: cox_interaction}]
"""


@dataclass(frozen=True)
class Case:
    text: str | bytes | Callable[[Path], str]  # the config (or a builder given the folder)
    message: str  # words the error must contain (key and rule)
    overrides: tuple[str, ...] = ()


def _with(extra: str) -> str:
    return GOOD + extra


def _output_root_is_a_file(folder: Path) -> str:
    (folder / "taken").write_text("not a folder", encoding="utf-8")
    return _with("output: {root: taken}\n")


def _data_outside(folder: Path) -> str:
    return GOOD.replace(
        "data: {source: synthetic, n: 200}", "data: {source: file, path: /etc/passwd}"
    )


CASES: dict[str, Case] = {
    "unknown key": Case(
        GOOD.replace("estimators:", "estimator:"),
        "estimator: unknown key; did you mean 'estimators'",
    ),
    "unknown nested key": Case(
        _with("evaluation: {alpah: 0.1}\n"), "evaluation.alpah: unknown key"
    ),
    "wrong type": Case(
        GOOD.replace("n: 200", "n: many"), "data.n: Input should be a valid integer"
    ),
    "path traversal in the name": Case(
        GOOD.replace("name: adversarial", "name: ../../etc/cron.d/x"),
        "name: '../../etc/cron.d/x' cannot name a folder",
    ),
    "path traversal in an estimator name": Case(
        GOOD.replace("{kind: cox_interaction}", "{name: ../../x, kind: cox_interaction}"),
        "estimators[0].name: '../../x' cannot name a folder",
    ),
    "300-character name": Case(
        GOOD.replace("name: adversarial", "name: " + "a" * 300),
        "name: String should have at most 100 characters",
    ),
    "path traversal in the output root": Case(
        _with("output: {root: ../../../tmp/escape}\n"),
        "output.root: '../../../tmp/escape' climbs out with '..'",
    ),
    "output root under /proc": Case(_with("output: {root: /proc/self}\n"), "is under /proc"),
    "output root is a file": Case(
        _output_root_is_a_file, "output.root: taken is a file, not a folder"
    ),
    "data path outside the project (not a cohort)": Case(
        _data_outside, "data.path: /etc/passwd: unsupported file type (no extension)"
    ),
    "data path that does not exist, by traversal": Case(
        GOOD.replace(
            "data: {source: synthetic, n: 200}", "data: {source: file, path: ../../../../nope.csv}"
        ),
        "data.path: no such file",
    ),
    "YAML anchor bomb": Case(BOMB, "expands to more than 100,000 values"),
    "self-referencing alias": Case(_with("description: &x [*x]\n"), "nested too deeply"),
    "python object tag": Case(
        _with('description: !!python/object/apply:os.system ["touch PWNED"]\n'),
        "tags such as !!python/... are never run",
    ),
    "huge data.n": Case(
        GOOD.replace("n: 200", "n: 100000000"),
        "data.n: Input should be less than or equal to 1000000",
    ),
    "seed beyond numpy's range": Case(
        _with("seeds: {global: 4294967296}\n"),
        "seeds.global: Input should be less than or equal to 4294967295",
    ),
    "boolean seed": Case(
        _with("seeds: {global: true}\n"), "seeds.global: Input should be a valid integer"
    ),
    "boolean seed from --set": Case(
        GOOD, "seeds.global: Input should be a valid integer", ("seeds.global=true",)
    ),
    "negative Cox penalizer": Case(
        GOOD.replace("{kind: cox_interaction}", "{kind: cox_interaction, params: {penalizer: -1}}"),
        "cox_interaction parameter penalizer must be between 0 and 1e+06",
    ),
    "non-UTF-8 bytes": Case(
        GOOD.encode("utf-8") + b"description: caf\xe9\n", "is not UTF-8 text (byte 0xe9"
    ),
    "deep nesting": Case(
        _with("description: " + "[" * 5000 + "]" * 5000 + "\n"), "nested too deeply"
    ),
    "config over 1 MB": Case(
        _with("description: '" + "x" * 1_100_000 + "'\n"), "a config is at most 1,000,000 bytes"
    ),
    "a list instead of a mapping": Case(
        "- name: x\n- estimators: []\n", "a config must be a mapping of sections"
    ),
}


def _write(folder: Path, case: Case) -> Path:
    text = case.text(folder) if callable(case.text) else case.text
    path = folder / "config.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request, tmp_path, monkeypatch) -> tuple[Case, Path]:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)  # relative output roots and data paths resolve here
    monkeypatch.setenv("HTE_HOME", str(tmp_path / "home"))
    spec = CASES[request.param]
    return spec, _write(folder, spec)


def test_library_refuses_with_key_and_rule_and_writes_nothing(case):
    spec, path = case
    before = _listing(path.parent)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        config = load_config(path, spec.overrides)
        run_experiment(config, progress=False)
    assert time.perf_counter() - started < 10  # a bomb or deep nesting is refused fast
    assert spec.message in str(info.value)
    assert _listing(path.parent) == before  # no run folder, no stray file (PWNED)


def test_hte_run_exits_1_without_a_traceback(case):
    spec, path = case
    before = _listing(path.parent)
    args = ["run", str(path), "--no-progress"] + [w for o in spec.overrides for w in ("--set", o)]
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "config error" in result.output
    assert spec.message.split(": ")[-1][:40] in re.sub(r"\s+", " ", result.output)
    assert _listing(path.parent) == before


def test_at_least_10_distinct_configs():
    assert len(CASES) >= 10
