"""The same SQL on a real PostgreSQL server (started by the test session) gives the same cohort."""

from __future__ import annotations

import pandas as pd
import pytest

from hte.data.omop.build import build_cohort
from hte.data.omop.connection import OmopError, connect
from hte.data.omop.synthesize import synthesize

SPEC = "configs/cohort_omop.yaml"


def test_postgres_build_equals_duckdb(small_ehr, postgres_url):
    path, duck_synthesis = small_ehr
    pg_synthesis = synthesize(400, 3, "default", postgres_url)
    assert pg_synthesis.rows == duck_synthesis.rows
    on_pg = build_cohort(postgres_url, SPEC)
    on_duck = build_cohort(f"duckdb:///{path}", SPEC)
    assert on_pg.attrition == on_duck.attrition
    pd.testing.assert_frame_equal(on_pg.cohort, on_duck.cohort)
    assert on_pg.concepts.unmatched == on_duck.concepts.unmatched


def test_postgres_errors_name_table(postgres_url):
    with connect(postgres_url) as db:
        db.execute("DROP SCHEMA IF EXISTS empty_cdm CASCADE")
        db.execute("CREATE SCHEMA empty_cdm")
        db.execute("CREATE TABLE empty_cdm.person (person_id integer)")
    spec_text = open(SPEC).read().replace("cdm_schema: null", "cdm_schema: empty_cdm")
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(spec_text)
    with pytest.raises(OmopError, match=r"table empty_cdm.measurement is missing"):
        build_cohort(postgres_url, fh.name)
    bad = postgres_url.rsplit(":", 1)[0] + ":1/omop"
    with pytest.raises(OmopError, match="cannot connect"):
        connect(bad)
