"""Fixtures shared by every test layer: real OCI registries and a real PostgreSQL server.

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

from affidavit.demo.services import LocalRegistry, ReferrersRegistry
from binary_builds import NODE_TESTS, SIGSTORE_TESTS, start_binary_builds, stop_binary_builds
from image_builds import IMAGE_TEST_DIRS, start_background_builds, stop_background_builds
from lanes import add_lane_option, keep_lane
from ledger_databases import PostgresServer, pg_bin

IN_CI = os.environ.get("CI") == "true"
pytest_plugins = ("teardown_times",)


def _in(item: pytest.Item, paths: tuple[str, ...]) -> bool:
    path = Path(item.path).as_posix()
    return any(f"/{p}" in path for p in paths)


def _image_rank(item: pytest.Item) -> int:
    for rank, directory in enumerate(IMAGE_TEST_DIRS, start=1):
        if _in(item, (directory,)):
            return rank
    return 0


def _rank(item: pytest.Item) -> int:
    """0: needs nothing built during the session; 1: the private Sigstore's binaries; then the
    image's tests (the node's among them) in IMAGE_TEST_DIRS order."""
    image = _image_rank(item)
    if image:
        return 1 + image
    return 1 if _in(item, SIGSTORE_TESTS) else 0


def pytest_addoption(parser: pytest.Parser) -> None:
    add_lane_option(parser)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Only this lane's tests are kept (``--lane``, lanes.py). The tests that need something
    built during the session run last, and the builds start now, so that building (minutes, in
    CI every time) overlaps the rest of the session: the image (image_builds.py), and under
    ``make test`` the node's and the private Sigstore's binaries when they are not built yet
    (binary_builds.py)."""
    keep_lane(config, items, lambda item: _rank(item) > 0)
    items.sort(key=_rank)  # stable: the order within each group is kept
    if config.option.collectonly:
        return
    if any(_image_rank(item) for item in items):
        start_background_builds()
    kinds = (("sigstore", SIGSTORE_TESTS), ("node", NODE_TESTS))
    start_binary_builds(tuple(k for k, paths in kinds if any(_in(i, paths) for i in items)))


def pytest_sessionfinish() -> None:
    stop_background_builds()
    stop_binary_builds()


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
def referrers_registry() -> Iterator[ReferrersRegistry]:
    """A real registry with the OCI 1.1 referrers API (go-containerregistry's, built beside
    cosign by ``scripts/k8s-binaries cosign``), shared by the session."""
    from affidavit.envtest.binaries import BinariesMissingError

    with tempfile.TemporaryDirectory(prefix="affidavit-referrers-") as d:
        try:
            server = ReferrersRegistry(Path(d)).start()
        except BinariesMissingError as e:
            missing("oci-registry", e.hint or "run `bash scripts/k8s-binaries cosign`")
            raise
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def mirror_registry() -> Iterator[LocalRegistry]:
    """A second registry like ``registry``, on a port of its own: where ``affidavit copy``
    promotes images to (a regional or air-gapped mirror)."""
    if not (shutil.which("docker-registry") or Path("/usr/bin/docker-registry").exists()):
        missing("docker-registry", "run `make deps` (apt-get install docker-registry)")
    with (
        tempfile.TemporaryDirectory(prefix="affidavit-mirror-") as d,
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
