"""Every error hte raises on purpose is an HteError and still its builtin type; ``src/hte`` defines\nno other exception class."""

import pytest

from hte.app.answers import InvalidProfile
from hte.app.run_view import RunFolderError
from hte.app.your_data import UploadRefused
from hte.config import ConfigError, load_config
from hte.data.column_map import ColumnMapError
from hte.data.load import CohortFileError
from hte.data.omop.connection import OmopError
from hte.data.schema import CohortValidationError
from hte.errors import FitError, HteError
from hte.pipeline.predict import PredictError
from hte.pipeline.profile_fields import ProfileError
from hte.runs import ModelIntegrityError
from hte.sweep import SweepError


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (ConfigError, ValueError),
        (CohortValidationError, ValueError),
        (CohortFileError, ValueError),
        (ColumnMapError, ValueError),
        (OmopError, ValueError),
        (SweepError, RuntimeError),
        (ModelIntegrityError, RuntimeError),
        (FitError, RuntimeError),
        (PredictError, ValueError),
        (ProfileError, ValueError),
        (RunFolderError, ValueError),
        (UploadRefused, ValueError),
        (InvalidProfile, ValueError),
    ],
)
def test_named_errors_are_hte_errors_and_keep_their_builtin_base(error, builtin):
    assert issubclass(error, HteError) and issubclass(error, builtin)


def test_a_bad_config_raises_an_hte_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nestimators: []\nno_such_key: 1\n", encoding="utf-8")
    with pytest.raises(HteError, match="no_such_key"):
        load_config(path)


def test_every_exception_class_of_the_package_is_an_hte_error():
    import ast
    from pathlib import Path

    import hte

    src = Path(hte.__file__).parent
    bases: dict[str, set[str]] = {}  # class name -> names of its bases, over the whole package
    where: dict[str, str] = {}
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                where[node.name] = f"{path.relative_to(src)}: {node.name}"

    def ancestors(name: str, seen: frozenset = frozenset()) -> set[str]:
        out = set(bases.get(name, ()))
        for base in bases.get(name, ()):
            if base in bases and base not in seen:
                out |= ancestors(base, seen | {name})
        return out

    strays = [
        where[name]
        for name in bases
        if name != "HteError"
        and any(a.endswith(("Error", "Exception")) for a in ancestors(name))
        and "HteError" not in ancestors(name)
    ]
    assert strays == [], f"exceptions that are not HteErrors: {strays}"
