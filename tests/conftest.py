"""Fixtures shared by every test layer: a real OCI registry and a real PostgreSQL server.

Both are Debian's own servers started on 127.0.0.1 with random ports, the way a developer would
run them; nothing here is a mock. In CI (``CI=true``) a missing server binary is a failure, so a
broken install step cannot hide behind skipped tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from affidavit.demo.services import LocalRegistry
from image_builds import IMAGE_TEST_DIRS, start_background_builds, stop_background_builds
from ledger_databases import PostgresServer, pg_bin

IN_CI = os.environ.get("CI") == "true"


def _image_rank(item: pytest.Item) -> int:
    path = Path(item.path).as_posix()
    for rank, directory in enumerate(IMAGE_TEST_DIRS, start=1):
        if f"/{directory}" in path:
            return rank
    return 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that need Affidavit's image run last, and its builds start now, so that
    building (minutes, in CI every time) overlaps the rest of the session (image_builds.py)."""
    items.sort(key=_image_rank)  # stable: the order within each group is kept
    if not config.option.collectonly and any(_image_rank(item) for item in items):
        start_background_builds()


def pytest_sessionfinish() -> None:
    stop_background_builds()


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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 with a fresh cluster; yields a SQLAlchemy URL."""
    bindir = pg_bin()
    if bindir is None:
        missing("PostgreSQL server", "run `make deps` (apt-get install postgresql)")
        raise AssertionError("unreachable")
    server = PostgresServer(bindir)
    try:
        server.start()
        server.create_database()
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own (database ``ledger``), for tests that stop it."""
    bindir = pg_bin()
    if bindir is None:
        missing("PostgreSQL server", "run `make deps` (apt-get install postgresql)")
        raise AssertionError("unreachable")
    server = PostgresServer(bindir)
    try:
        server.start()
        server.create_database()
        yield server
    finally:
        server.remove()
