"""Fixtures shared by every test layer: a real OCI registry and a real PostgreSQL server.

Both are Debian's own servers started on 127.0.0.1 with random ports, the way a developer would
run them; nothing here is a mock. In CI (``CI=true``) a missing server binary is a failure, so a
broken install step cannot hide behind skipped tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from affidavit.demo.services import LocalRegistry

IN_CI = os.environ.get("CI") == "true"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing(what: str, how: str) -> None:
    """Fail in CI, skip elsewhere: a test that needs a real server never silently passes."""
    message = f"{what} is not installed; {how}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def registry() -> Iterator[LocalRegistry]:
    """A real OCI registry (distribution 2.8, no referrers API) shared by the session.

    ``.host`` is ``127.0.0.1:<port>``, ``.url`` its plain-HTTP base, ``.root`` its storage.
    """
    if not (shutil.which("docker-registry") or Path("/usr/bin/docker-registry").exists()):
        missing("docker-registry", "run `make deps` (apt-get install docker-registry)")
    with (
        tempfile.TemporaryDirectory(prefix="affidavit-registry-") as d,
        LocalRegistry(Path(d)) as server,
    ):
        yield server


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 with a fresh cluster; yields a SQLAlchemy URL."""
    bindir = _pg_bin()
    if bindir is None:
        missing("PostgreSQL server", "run `make deps` (apt-get install postgresql)")
        raise AssertionError("unreachable")
    base = Path(tempfile.mkdtemp(prefix="affidavit-pg-"))
    data = base / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(base, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "affidavit", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "pg.log"),
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off",
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "affidavit",
                "ledger",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://affidavit@127.0.0.1:{port}/ledger"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
