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
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def wait_for(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready within {timeout}s")


@dataclass(frozen=True)
class RegistryServer:
    """A running docker-registry: ``host`` is ``127.0.0.1:<port>``, plain HTTP on loopback."""

    host: str
    root: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def _start_registry(root: Path) -> tuple[subprocess.Popen[bytes], RegistryServer]:
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(binary).exists():
        missing("docker-registry", "run `make deps` (apt-get install docker-registry)")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    server = RegistryServer(host=f"127.0.0.1:{port}", root=root)

    def ready() -> bool:
        with urllib.request.urlopen(f"{server.url}/v2/", timeout=1) as r:
            return bool(r.status == 200)

    wait_for(ready, "docker-registry")
    return proc, server


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryServer]:
    """A real OCI registry (distribution 2.8, no referrers API) shared by the session."""
    with tempfile.TemporaryDirectory(prefix="affidavit-registry-") as d:
        proc, server = _start_registry(Path(d))
        try:
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


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
