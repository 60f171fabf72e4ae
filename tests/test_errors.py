"""Every error hte raises on purpose is an HteError and still its builtin type."""

import pytest

from hte.config import ConfigError, load_config
from hte.data.column_map import ColumnMapError
from hte.data.load import CohortFileError
from hte.data.omop.connection import OmopError
from hte.data.schema import CohortValidationError
from hte.errors import HteError
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
    ],
)
def test_named_errors_are_hte_errors_and_keep_their_builtin_base(error, builtin):
    assert issubclass(error, HteError) and issubclass(error, builtin)


def test_a_bad_config_raises_an_hte_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nestimators: []\nno_such_key: 1\n", encoding="utf-8")
    with pytest.raises(HteError, match="no_such_key"):
        load_config(path)
