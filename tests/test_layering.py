"""Data flows one way: data -> design -> estimators -> evaluation -> pipeline/app.

Each upstream module is imported alone in a fresh process: this catches import cycles that a
shared test process hides (whatever was imported first) and checks that no upstream layer reaches
into a downstream one.
"""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import hte.data
import hte.data.omop
import hte.design

DOWNSTREAM = {
    "hte.data": ("hte.design", "hte.estimators", "hte.evaluation", "hte.pipeline"),
    "hte.design": ("hte.estimators", "hte.evaluation", "hte.pipeline"),
}


def _modules(package) -> list[str]:
    return [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]


STANDALONE = _modules(hte.data) + _modules(hte.data.omop) + _modules(hte.design)

# One interpreter imports the third-party libraries once, then forks a child per module: the child
# starts with no hte module loaded, imports its module and reports which downstream hte modules
# came with it. As strict as a fresh interpreter per module (hte is imported nowhere before the
# fork) at a fraction of the time.
_FORK_EACH = """
import importlib, json, os, sys
import numpy, pandas, scipy.stats, sklearn.base, pydantic, pandera.pandas, yaml  # noqa: F401
assert not [m for m in sys.modules if m == "hte" or m.startswith("hte.")]
for module, forbidden in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(module)
            out = {"bad": sorted(m for m in sys.modules if m.startswith(tuple(forbidden)))}
        except BaseException as exc:
            out = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    print(json.dumps([module, json.loads(b"".join(chunks))]))
"""


@pytest.fixture(scope="module")
def standalone_imports() -> dict[str, dict]:
    jobs = [(m, DOWNSTREAM[".".join(m.split(".")[:2])]) for m in STANDALONE]
    result = subprocess.run(
        [sys.executable, "-c", _FORK_EACH, json.dumps(jobs)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(json.loads(line) for line in result.stdout.splitlines())


@pytest.mark.parametrize("module", STANDALONE)
def test_module_imports_alone_without_downstream_layers(module, standalone_imports):
    outcome = standalone_imports[module]
    assert "error" not in outcome, f"{module} does not import alone: {outcome.get('error')}"
    assert outcome["bad"] == [], f"{module} imports downstream modules: {outcome['bad']}"


# The faces (report, app) only read run folders and call the pipeline: no modelling imports.
FACES = ("app", "report")
MODELLING = ("hte.estimators", "hte.design", "sklearn", "econml", "sksurv", "lifelines", "shap")


def _face_files() -> list[Path]:
    src = Path(hte.data.__file__).resolve().parents[1]
    return sorted(p for face in FACES for p in (src / face).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", _face_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_report_and_app_hold_no_modelling_code(path):
    bad = [n for n in _imports(path) if n.split(".")[0] in MODELLING or n.startswith(MODELLING)]
    assert bad == [], f"{path} imports modelling code: {bad}; call hte.pipeline instead"


# --------------------------------------------------------------------------------------------------
# The whole package: imports point down the layers, and no module reaches itself again

# A module may import its own layer and the layers ranked below it, never one ranked above.
RANK = {
    "array_checks": 0,
    "errors": 0,
    "figure_text": 0,
    "lazy_names": 0,  # package names imported on first use (hte.lazy_names)
    "runs": 0,
    "vocabulary": 0,  # target and estimator-kind names (hte.vocabulary): every layer may read it
    "data": 1,
    "design": 2,
    "estimators": 3,
    "evaluation": 4,
    "explain": 4,
    "config": 5,
    "pipeline": 6,
    "sweep": 6,
    "report": 7,
    "app": 7,
    "cli": 8,
}


def _package_modules() -> dict[str, Path]:
    """Dotted name -> file of every module of hte (packages by their ``__init__``)."""
    src = Path(hte.data.__file__).resolve().parents[2]
    out = {}
    for path in sorted((src / "hte").rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _package_modules()


def _target(name: str) -> str | None:
    """The hte module an imported dotted name lives in (the longest known prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _hte_imports(module: str) -> set[str]:
    """hte modules ``module`` imports anywhere in its file (function-level imports included:
    a cycle through a lazy import is still a cycle)."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {_target(a.name) for a in node.names if a.name.split(".")[0] == "hte"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.split(".")[0] != "hte":
                continue
            for alias in node.names:  # "from hte.report import blocks" imports a module
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else _target(base))
    found.discard(None)
    found.discard(module)
    return found


GRAPH = {module: _hte_imports(module) for module in MODULES}


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else "hte"


def test_every_module_has_a_layer():
    unknown = sorted({_layer(m) for m in MODULES} - set(RANK) - {"hte"})
    assert unknown == [], f"add these to RANK in tests/test_layering.py: {unknown}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) in RANK))
def test_no_module_imports_a_layer_above_it(module):
    own = RANK[_layer(module)]
    above = sorted(t for t in GRAPH[module] if RANK.get(_layer(t), -1) > own)
    assert above == [], f"{module} (layer {_layer(module)}) imports a layer above it: {above}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_does_not_import_the_benchmark_scripts():
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "benchmarks"], module
