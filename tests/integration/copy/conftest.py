"""Fixtures for the copy tests: a registry client, signing keys, and a fresh image per test.

Each test's image gets its own repository in the session registry (the source) and its copy a
repository of its own in the mirror registry, so what one test copies never shows up in another.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from copy_support import Keys, make_keys

from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import ImageReference, RegistryClient

_counter = itertools.count()


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    with RegistryClient() as c:
        yield c


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path, "release")


@pytest.fixture
def other_keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path, "mirror")


@pytest.fixture
def new_image(
    registry: Any, mirror_registry: Any, client: RegistryClient
) -> Callable[..., tuple[ImageReference, str]]:
    """Push a fresh sample image to a repository of its own (tag ``v1``); returns
    REGISTRY/REPO@DIGEST and the mirror repository (REGISTRY/REPO) to copy it to."""

    def make(content: bytes = b"print('hello')\n") -> tuple[ImageReference, str]:
        n = next(_counter)
        repository = ImageReference.parse(f"{registry.host}/acme/app{n}")
        digest = push_sample_image(client, repository, {"app/main.py": content}, "v1")
        return repository.with_digest(digest), f"{mirror_registry.host}/mirror/app{n}"

    return make
