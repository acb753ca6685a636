"""A fresh ledger per test on SQLite (a file, WAL) or on the session's real PostgreSQL, and the
real PostgreSQL server itself (``PostgresServer``: a fresh cluster on 127.0.0.1 that a fault test
can stop and start again on the same port and data).

The ledger's and the audit's integration tests both run every test against both backends;
their conftest.py files import these two fixtures from here.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from affidavit.envtest.process import free_port
from affidavit.ledger import Ledger

_databases = itertools.count(1)


def pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


class PostgresServer:
    """Debian's PostgreSQL with a fresh cluster in a temporary directory, on a random port."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="affidavit-pg-"))
        self.data = self.base / "data"
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.base, "postgres", "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *self.run_as,
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "affidavit",
                "--auth=trust",
            ],
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        self.url = f"postgresql+psycopg://affidavit@127.0.0.1:{self.port}/ledger"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off"
        self._ctl("-l", str(self.base / "pg.log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def create_database(self, name: str = "ledger") -> None:
        subprocess.run(
            [
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "affidavit",
                name,
            ],
            check=True,
            capture_output=True,
        )

    def remove(self) -> None:
        """Stop the server and delete its cluster. ``immediate``: the files are deleted next,
        so the shutdown checkpoint of a fast stop (seconds, after a session's databases) buys
        nothing."""
        subprocess.run(
            [
                *self.run_as,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    # One database per test, named after the test folder (ledger_3, audit_7, ...).
    name = f"{request.path.parent.name}_{next(_databases)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    yield base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    led = Ledger(ledger_url)
    yield led
    led.close()
