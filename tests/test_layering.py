"""Data flows one way: data -> design -> estimators -> evaluation -> pipeline/app.

Each upstream module is imported alone in a fresh interpreter: this catches import cycles that a
shared test process hides (whatever was imported first) and checks that no upstream layer reaches
into a downstream one.
"""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import hte.data
import hte.design

DOWNSTREAM = {
    "hte.data": ("hte.design", "hte.estimators", "hte.evaluation", "hte.pipeline"),
    "hte.design": ("hte.estimators", "hte.evaluation", "hte.pipeline"),
}


def _modules(package) -> list[str]:
    return [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]


@pytest.mark.parametrize("module", _modules(hte.data) + _modules(hte.design))
def test_module_imports_alone_without_downstream_layers(module):
    layer = ".".join(module.split(".")[:2])
    forbidden = DOWNSTREAM[layer]
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({forbidden!r}))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"{module} imports downstream modules: {result.stdout}"


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
