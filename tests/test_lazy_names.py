"""hte.pipeline and hte.estimators import their modules on first use (hte.lazy_names): every
public name resolves, an unknown one is an AttributeError, and importing the package alone pulls
no estimator library (checked in a fresh interpreter, where nothing else imported them)."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import pytest

import hte.estimators
import hte.pipeline


@pytest.mark.parametrize("package", [hte.estimators, hte.pipeline])
def test_every_public_name_resolves_and_is_listed(package):
    for name in package.__all__:
        home = import_module(package._HOMES[name])
        assert getattr(package, name) is getattr(home, name)
        assert name in dir(package)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchEstimator'"):
        package.NoSuchEstimator  # noqa: B018


def test_importing_the_packages_imports_no_estimator_library():
    code = (
        "import sys, hte.estimators, hte.pipeline\n"
        "heavy = ['econml', 'sksurv', 'lifelines', 'stochtree', 'statsmodels', 'numba']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "from hte.estimators import CRSCausalForest\n"
        "print(CRSCausalForest.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["", "hte.estimators.crs_forest"]
