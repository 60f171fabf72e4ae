"""One small interface over the databases a cohort is built from: DuckDB (embedded) and PostgreSQL.

``connect("duckdb:///ehr.duckdb")`` or ``connect("postgresql://user@host:5432/db")`` returns a
``Database`` that runs SQL text and returns pandas frames. The builder's SQL is written once, in the
subset both engines read the same way (CTEs, window functions, ``date - integer``, ``date - date``
in days). DuckDB runs in-process; PostgreSQL goes through SQLAlchemy with the psycopg driver.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from hte.data.omop.cdm import columns, create_table_sql
from hte.errors import HteError


class OmopError(HteError, ValueError):
    """A database, table, column or row that the OMOP builder cannot use; the message names it."""


class Database:
    """A connection that runs SQL text; subclasses implement the engine."""

    dialect: str = ""
    url: str = ""

    def __init__(self, schema: str | None = None):
        self.schema = schema

    def query(self, sql: str) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def execute(self, sql: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def table(self, name: str) -> str:
        """The schema-qualified name of a CDM table."""
        return f"{self.schema}.{name}" if self.schema else name

    def table_columns(self) -> dict[str, set[str]]:
        """Every table of the CDM schema and its columns (lower case), from information_schema."""
        schema = self.schema or self.default_schema
        frame = self.query(
            "SELECT lower(table_name) AS t, lower(column_name) AS c "
            f"FROM information_schema.columns WHERE table_schema = '{_quote(schema)}'"
        )
        out: dict[str, set[str]] = {}
        for t, c in zip(frame["t"], frame["c"], strict=True):
            out.setdefault(t, set()).add(c)
        return out

    @property
    def default_schema(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def write_table(self, name: str, frame: pd.DataFrame) -> None:  # pragma: no cover
        raise NotImplementedError

    def create_cdm_table(self, name: str, frame: pd.DataFrame) -> None:
        """Create CDM table ``name`` (v5.4 DDL) and fill it from ``frame`` (columns by name)."""
        self.execute(f"DROP TABLE IF EXISTS {self.table(name)}")
        self.execute(create_table_sql(name, self.dialect, self.schema))
        full = frame.reindex(columns=columns(name))
        self.write_table(name, full)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _quote(text: str) -> str:
    return text.replace("'", "''")


class DuckDB(Database):
    """An embedded DuckDB file (``:memory:`` for an in-memory database)."""

    dialect = "duckdb"

    def __init__(self, path: str | Path, *, read_only: bool = False, schema: str | None = None):
        import duckdb

        super().__init__(schema)
        self.path = str(path)
        self.url = f"duckdb:///{self.path}"  # an absolute path gives duckdb:////abs
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise OmopError(f"no such DuckDB database: {self.path}")
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:  # not a DuckDB file, locked by a writer, ...
            reason = str(exc).strip().splitlines()[0]
            raise OmopError(f"cannot open DuckDB database {self.path}: {reason}") from None

    @property
    def default_schema(self) -> str:
        return "main"

    def query(self, sql: str) -> pd.DataFrame:
        return self._con.execute(sql).df()

    def execute(self, sql: str) -> None:
        self._con.execute(sql)

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        self._con.register("_hte_frame", frame)
        try:
            self._con.execute(f"INSERT INTO {self.table(name)} BY NAME SELECT * FROM _hte_frame")
        finally:
            self._con.unregister("_hte_frame")

    def close(self) -> None:
        self._con.close()


class PostgreSQL(Database):
    """A PostgreSQL database through SQLAlchemy (psycopg 3 driver); one connection, one session,
    so the builder's temporary tables live as long as the ``Database``."""

    dialect = "postgresql"

    def __init__(self, url: str, *, schema: str | None = None):
        import sqlalchemy

        super().__init__(schema)
        self.url = url
        driver_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        self._engine = sqlalchemy.create_engine(driver_url, poolclass=sqlalchemy.pool.NullPool)
        try:
            self._con = self._engine.connect()
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise OmopError(f"cannot connect to {hide_password(url)}: {reason}") from None

    @property
    def default_schema(self) -> str:
        return "public"

    def query(self, sql: str) -> pd.DataFrame:
        import sqlalchemy

        result = self._con.execute(sqlalchemy.text(_escape_colons(sql)))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def execute(self, sql: str) -> None:
        import sqlalchemy

        self._con.execute(sqlalchemy.text(_escape_colons(sql)))
        self._con.commit()

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """COPY the frame in as CSV (empty cells are NULL)."""
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d")
        raw = self._con.connection.driver_connection
        cols = ", ".join(frame.columns)
        with raw.cursor() as cur:
            with cur.copy(f"COPY {self.table(name)} ({cols}) FROM STDIN WITH (FORMAT csv)") as cp:
                cp.write(buffer.getvalue())
        raw.commit()

    def close(self) -> None:
        self._con.close()
        self._engine.dispose()


def _escape_colons(sql: str) -> str:
    """SQLAlchemy's text() reads ``:name`` as a bind parameter; the builder uses none."""
    return sql.replace(":", r"\:")


def hide_password(url: str) -> str:
    """The URL without its password (for messages and run folders)."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def connect(url: str | Path, *, read_only: bool = False, schema: str | None = None) -> Database:
    """Open ``duckdb:///path/to/file.duckdb`` (or a plain path ending in .duckdb / .db) or
    ``postgresql://user[:password]@host:port/dbname``."""
    text = str(url)
    if text.startswith("duckdb://"):
        path = text.removeprefix("duckdb://")
        path = path[1:] if path.startswith("/") else path  # duckdb:///rel, duckdb:////abs
        return DuckDB(path or ":memory:", read_only=read_only, schema=schema)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgreSQL(text.replace("postgres://", "postgresql://", 1), schema=schema)
    if text.endswith((".duckdb", ".db")) or text == ":memory:":
        return DuckDB(text, read_only=read_only, schema=schema)
    raise OmopError(
        f"unknown database {text!r}: use duckdb:///path/to/file.duckdb or "
        "postgresql://user@host:port/dbname"
    )


def sql_ids(ids: list[int]) -> str:
    """An SQL list of integer concept ids (never empty: -1 matches nothing)."""
    return ", ".join(str(int(i)) for i in ids) if ids else "-1"


def sql_text(value: str) -> str:
    """A quoted SQL string literal (both engines double a single quote)."""
    return "'" + _quote(value) + "'"
