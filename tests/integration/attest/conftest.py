"""Fixtures for the attestation tests: a client of the real registry, keys, a fresh image per test.

Every test gets its own repository in the session registry, so what one test attaches (or
tampers with) never shows up in another.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from attest_support import KeyPair, make_key

from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import ImageReference, RegistryClient

_counter = itertools.count()


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    with RegistryClient() as c:
        yield c


@pytest.fixture
def key(tmp_path: Path) -> KeyPair:
    return make_key(tmp_path, "release")


@pytest.fixture
def other_key(tmp_path: Path) -> KeyPair:
    return make_key(tmp_path, "other", "ed25519")


@pytest.fixture
def new_image(registry: Any, client: RegistryClient) -> Callable[..., ImageReference]:
    """Push a fresh sample image to its own repository; returns REGISTRY/REPO@DIGEST."""

    def make(content: bytes = b"print('hello')\n", tag: str = "v1") -> ImageReference:
        repository = ImageReference.parse(f"{registry.host}/affidavit-test/app{next(_counter)}")
        digest = push_sample_image(client, repository, {"app/main.py": content}, tag)
        return repository.with_digest(digest)

    return make
