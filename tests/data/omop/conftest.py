"""Fixtures: a synthetic EHR in DuckDB, and a real PostgreSQL server started for the test session.

The PostgreSQL server is Debian's package (``make postgres`` installs it; ``make test`` depends on
it): a temporary cluster is initdb'd on a free localhost port, run as the ``postgres`` user when
the tests run as root, and stopped and deleted at the end of the session.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from hte.data.omop.synthesize import synthesize

N_SMALL = 400
SEED = 3


@pytest.fixture(scope="session")
def small_ehr(tmp_path_factory) -> tuple[Path, object]:
    """A synthetic EHR of N_SMALL patients (seed SEED) and its synthesis record."""
    path = tmp_path_factory.mktemp("ehr") / "ehr.duckdb"
    result = synthesize(N_SMALL, SEED, "default", path)
    return path, result


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], as_postgres: bool) -> subprocess.CompletedProcess:
    full = ["runuser", "-u", "postgres", "--", *cmd] if as_postgres else cmd
    return subprocess.run(full, check=True, capture_output=True, text=True)


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a throw-away PostgreSQL database on 127.0.0.1 (the server stops after the session)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.fail(
            "PostgreSQL is not installed: run `make postgres` (Debian's postgresql package)"
        )
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="hte-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if as_postgres:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "hte",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        as_postgres,
    )
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ],
        as_postgres,
    )
    try:
        for _ in range(50):
            try:
                _run(
                    [
                        str(bindir / "createdb"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-U",
                        "hte",
                        "omop",
                    ],
                    as_postgres,
                )
                break
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        yield f"postgresql://hte@127.0.0.1:{port}/omop"
    finally:
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], as_postgres)
        shutil.rmtree(root, ignore_errors=True)
