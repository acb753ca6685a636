"""Fixtures for interop with a real cosign binary (built from the Go module proxy).

cosign is built by ``scripts/k8s-binaries cosign`` into
``~/.cache/affidavit/tools/cosign-<COSIGN_VERSION>/bin/cosign`` (``AFFIDAVIT_COSIGN`` overrides
the path). Without it these tests fail in CI (``CI=true``) and skip elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cosign_support import Cosign, cosign_path


@pytest.fixture(scope="session")
def cosign(tmp_path_factory: pytest.TempPathFactory) -> Cosign:
    binary = cosign_path()
    if binary is None or not binary.exists():
        message = "cosign is not installed; build it with `scripts/k8s-binaries cosign`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return Cosign(binary, tmp_path_factory.mktemp("cosign-home"))


@pytest.fixture
def cosign_keys(cosign: Cosign, tmp_path: Path) -> Path:
    """A key pair made by ``cosign generate-key-pair``: PREFIX.key (encrypted) and PREFIX.pub."""
    cosign.run("generate-key-pair", "--output-key-prefix", str(tmp_path / "cosign"))
    return tmp_path / "cosign"


@pytest.fixture
def sample_image(registry: Any) -> Callable[[str], str]:
    from affidavit.attestations.image import push_sample_image
    from affidavit.attestations.registry import RegistryClient

    def push(name: str) -> str:
        with RegistryClient() as client:
            repository = f"{registry.host}/affidavit-cosign/{name}"
            digest = push_sample_image(client, repository, {"srv/app": name.encode()}, "v1")
        return f"{repository}@{digest}"

    return push
