"""Fixtures for the decisions API tests: one control plane whose service proxy reaches the webhook
(see ``decisions_e2e_support``), shared by the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from decisions_e2e_support import ProxiedCluster, proxied_cluster


@pytest.fixture(scope="package")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedCluster]:
    with proxied_cluster(tmp_path_factory.mktemp("decisions-proxy")) as cluster:
        yield cluster
