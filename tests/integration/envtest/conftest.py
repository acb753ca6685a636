"""What the envtest tests share: a first free port that something else has already taken."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import affidavit.demo.services
import affidavit.envtest.sigstore
from affidavit.envtest.process import free_port


@pytest.fixture
def first_port_taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The first port the registries and the private Sigstore are handed is held by a listener,
    as a neighbour that asked for a free port meanwhile would hold it; the next ones are free.
    Yields the held port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = int(taken.getsockname()[1])
        handed: list[int] = []

        def first_taken() -> int:
            handed.append(held if not handed else free_port())
            return handed[-1]

        for module in (affidavit.demo.services, affidavit.envtest.sigstore):
            monkeypatch.setattr(module, "free_port", first_taken)
        yield held
