"""Data flows one way: data -> design -> estimators -> evaluation -> pipeline/app.

Each upstream module is imported alone in a fresh interpreter: this catches import cycles that a
shared test process hides (whatever was imported first) and checks that no upstream layer reaches
into a downstream one.
"""

import pkgutil
import subprocess
import sys

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
