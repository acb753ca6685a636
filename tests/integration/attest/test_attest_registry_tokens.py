"""A registry client keeps bearer tokens per repository, and a request names any repository it
likes: the client keeps at most MAX_TOKENS of them (oldest out), on a real token-auth registry."""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.attestations import registry
from affidavit.attestations.copy import copy_image
from affidavit.attestations.fetch import fetch
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


def test_parallel_first_requests_share_one_token_exchange(token_registry: Any) -> None:
    # a fresh client's fetch sends its first requests together; each meets the 401, and the
    # token service is asked once for the repository, not once per request
    host = token_registry.host
    credentials = {host: Credentials("ci", "s3cret")}
    image = ImageReference.parse(f"{host}/shared-token")
    with RegistryClient(credentials=credentials) as client:
        image = image.with_digest(push_sample_image(client, image, {"a": b"1"}, "v1"))
    for _ in range(3):
        before = len(token_registry.granted)
        with RegistryClient(credentials=credentials) as client:
            fetch(client, image)
        assert token_registry.granted[before:] == ["repository:shared-token:pull"]


def test_a_push_exchanges_its_own_token_after_a_pull(token_registry: Any) -> None:
    # a pull token another request got is not reused for a push, which needs push scope
    host = token_registry.host
    credentials = {host: Credentials("ci", "s3cret")}
    image = ImageReference.parse(f"{host}/pull-then-push")
    with RegistryClient(credentials=credentials) as client:
        push_sample_image(client, image, {"a": b"1"}, "v1")
    with RegistryClient(credentials=credentials) as client:
        assert client.find_manifest(image.with_tag("v1")) is not None
        before = len(token_registry.granted)
        push_sample_image(client, image, {"a": b"2"}, "v2")
        # the registry's challenge lists the actions in either order (a Go map: 1 time in 8
        # "push,pull"), and the client asks for the scope the challenge names
        (scope,) = token_registry.granted[before:]
        kind, name, actions = scope.split(":")
        assert (kind, name, sorted(actions.split(","))) == (
            "repository",
            "pull-then-push",
            ["pull", "push"],
        )


def test_a_copy_within_a_token_registry_mounts_its_blobs(token_registry: Any) -> None:
    """Staging to production in one registry: the mount's 401 names two scopes (push on the
    destination, pull on the repository mounted from), space-separated; each goes to the token
    service as a scope of its own. Sent as one, the token service could not read it and the
    copy failed."""
    host = token_registry.host
    credentials = {host: Credentials("ci", "s3cret")}
    staging = ImageReference.parse(f"{host}/staging/app")
    with RegistryClient(credentials=credentials) as client:
        staging = staging.with_digest(push_sample_image(client, staging, {"a": b"1"}, "v1"))
    with RegistryClient(credentials=credentials) as client:
        result = copy_image(client, staging, ImageReference.parse(f"{host}/production/app"))
        assert (result.image.blobs_mounted, result.image.blobs_copied) == (2, 0)
        copied = ImageReference.parse(f"{host}/production/app").with_digest(str(staging.digest))
        assert client.get_manifest(copied).digest == staging.digest
    assert "repository:staging/app:pull" in token_registry.granted


def test_a_copy_out_of_a_token_registry_streams_each_blob_with_a_pull_token(
    token_registry: Any, mirror_registry: Any
) -> None:
    """Into another registry the blobs stream from the source's GET, which meets the source's
    401 first: the pull token is taken then and the GET sent again."""
    host = token_registry.host
    source = ImageReference.parse(f"{host}/outbound/app")
    with RegistryClient(credentials={host: Credentials("ci", "s3cret")}) as client:
        source = source.with_digest(push_sample_image(client, source, {"a": b"2"}, "v1"))
    destination = ImageReference.parse(f"{mirror_registry.host}/outbound/app")
    with RegistryClient(credentials={host: Credentials("ci", "s3cret")}) as client:
        result = copy_image(client, source, destination)
        assert (result.image.blobs_copied, result.image.blobs_mounted) == (2, 0)
        assert client.get_manifest(destination.with_digest(str(source.digest))).digest == (
            source.digest
        )
