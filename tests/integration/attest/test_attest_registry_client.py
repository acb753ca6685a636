"""The OCI registry client: auth, the plain-HTTP rule, limits, credentials.

Against real docker-registry processes: the shared one, one that requires basic auth
(htpasswd), and one listening on this machine's non-loopback address to show that such a host
gets TLS unless it is explicitly marked insecure.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from attest_support import KeyPair, attest

from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import (
    BodyTooLargeError,
    Credentials,
    ImageReference,
    RegistryClient,
    credentials_from_docker_config,
)
from affidavit.attestations.verify import verify_image
from affidavit.errors import InputError, RegistryError

NewImage = Callable[..., ImageReference]


def test_docker_config_credentials() -> None:
    config = {
        "auths": {
            "https://registry.example.com/v1/": {"auth": base64.b64encode(b"robot:pa:ss").decode()},
            "127.0.0.1:5000": {"username": "ci", "password": "x"},
        }
    }
    assert credentials_from_docker_config(json.dumps(config)) == {
        "registry.example.com": Credentials("robot", "pa:ss"),
        "127.0.0.1:5000": Credentials("ci", "x"),
    }
    with pytest.raises(InputError) as caught:
        credentials_from_docker_config(b'{"auths": {"h": {"auth": "!!"}}}')
    assert caught.value.message.startswith(
        "the registry credentials are not a valid dockerconfigjson"
    )


def tags(host: str, repository: str, auth: tuple[str, str]) -> list[str]:
    """The repository's tags, read straight from the registry's API (the client lists none)."""
    r = httpx.get(f"http://{host}/v2/{repository}/tags/list", auth=auth, timeout=10)
    r.raise_for_status()
    return list(r.json()["tags"])


def test_basic_auth(auth_registry: str, tmp_path: object, key: KeyPair) -> None:
    repository = ImageReference.parse(f"{auth_registry}/secured")
    with RegistryClient() as anonymous, pytest.raises(RegistryError) as caught:
        push_sample_image(anonymous, repository, {"a": b"1"}, "v1")
    assert caught.value.message == (
        f"registry {auth_registry} refused access to {auth_registry}/secured: it requires a "
        "user name and password and none were given"
    )
    wrong = {auth_registry: Credentials("ci", "guess")}
    with RegistryClient(credentials=wrong) as client, pytest.raises(RegistryError) as caught:
        client.find_manifest(repository.with_tag("v1"))
    assert caught.value.message == (
        f"registry {auth_registry} refused access to {auth_registry}/secured (HTTP 401: "
        "UNAUTHORIZED authentication required)"
    )
    secret = base64.b64encode(b"ci:s3cret").decode()
    pull_secret = json.dumps({"auths": {auth_registry: {"auth": secret}}})
    credentials = credentials_from_docker_config(pull_secret)
    with RegistryClient(credentials=credentials) as client:
        digest = push_sample_image(client, repository, {"a": b"1"}, "v1")
        image = repository.with_digest(digest)
        attest(client, image, key)
        assert sorted(tags(auth_registry, "secured", ("ci", "s3cret"))) == sorted(
            ["v1", digest.replace(":", "-"), digest.replace(":", "-") + ".att"]
        )
        evidence = verify_image(client, f"{repository.name}:v1", [key.trusted])
        assert [a.signer for a in evidence.verified] == ["release.pub"]


def test_credentials_are_found_under_the_canonical_host(auth_registry: str) -> None:
    """A pull secret that spells the host another way still authenticates the canonical name."""
    port = auth_registry.rsplit(":", 1)[1]
    secret = base64.b64encode(b"ci:s3cret").decode()
    spelled = json.dumps({"auths": {f"http://LOCALHOST:{port}/v1/": {"auth": secret}}})
    repository = ImageReference.parse(f"localhost:{port}/secured-spelled")
    with RegistryClient(credentials=credentials_from_docker_config(spelled)) as client:
        digest = push_sample_image(client, repository, {"a": b"1"}, "v1")
        assert client.resolve(ImageReference.parse(f"LOCALHOST:{port}/secured-spelled:v1")) == (
            digest
        )


def test_non_loopback_hosts_get_tls_unless_marked_insecure(named_registry: str) -> None:
    ref = ImageReference.parse(f"{named_registry}/app:v1")
    with RegistryClient() as client, pytest.raises(RegistryError) as caught:
        client.find_manifest(ref)
    assert caught.value.message.startswith(f"registry {named_registry} is unreachable: TLS failed")
    with RegistryClient(insecure_hosts={named_registry}) as client:
        digest = push_sample_image(client, ref, {"a": b"1"}, "v1")
        assert client.resolve(ref) == digest


def test_manifest_size_limit(client: RegistryClient, new_image: NewImage) -> None:
    image = new_image()
    with RegistryClient(max_bytes=100) as small, pytest.raises(BodyTooLargeError) as caught:
        small.get_manifest(image)
    size = len(client.get_manifest(image).data)
    assert caught.value.message == f"manifest {image} is {size} bytes, over the 100-byte limit"


def test_sample_image_is_reproducible(client: RegistryClient, registry: object) -> None:
    host = getattr(registry, "host")  # noqa: B009 - the fixture's type lives in tests/conftest
    first = push_sample_image(client, f"{host}/affidavit-test/repro", {"b": b"2", "a": b"1"}, "x")
    second = push_sample_image(client, f"{host}/affidavit-test/repro", {"a": b"1", "b": b"2"}, "y")
    assert first == second
    manifest = client.get_manifest(ImageReference.parse(f"{host}/affidavit-test/repro:x")).json()
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"


def test_bearer_token_flow(token_registry: Any, key: KeyPair) -> None:
    host = token_registry.host
    repository = ImageReference.parse(f"{host}/secured")
    with RegistryClient() as anonymous, pytest.raises(RegistryError) as caught:
        anonymous.find_manifest(repository.with_tag("v1"))
    assert caught.value.message == (
        f"registry {host} refused access to {host}/secured: its token service answered HTTP 401"
    )
    credentials = {host: Credentials("ci", "s3cret")}
    with RegistryClient(credentials=credentials) as client:
        digest = push_sample_image(client, repository, {"a": b"1"}, "v1")
        attest(client, repository.with_digest(digest), key)
        evidence = verify_image(client, f"{repository.name}:v1", [key.trusted])
    assert [a.signer for a in evidence.verified] == ["release.pub"]
    # distribution writes the challenge's actions in map order ("push,pull" or "pull,push"),
    # and the client asks for the scope the challenge names
    pushes = [g for g in token_registry.granted if g.startswith("repository:secured:")]
    assert {"pull", "push"} in [set(g.rsplit(":", 1)[1].split(",")) for g in pushes]
