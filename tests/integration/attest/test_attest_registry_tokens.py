"""A registry client keeps bearer tokens per repository, and a request names any repository it
likes: the client keeps at most MAX_TOKENS of them (oldest out), on a real token-auth registry."""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.attestations import registry
from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import Credentials, ImageReference, RegistryClient


def test_bearer_tokens_are_bounded_oldest_first(
    token_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "MAX_TOKENS", 2)
    host = token_registry.host
    with RegistryClient(credentials={host: Credentials("ci", "s3cret")}) as client:
        for name in ("one", "two", "three"):
            push_sample_image(client, ImageReference.parse(f"{host}/{name}"), {"a": b"1"}, "v1")
        assert list(client._tokens) == [(host, "two"), (host, "three")]
