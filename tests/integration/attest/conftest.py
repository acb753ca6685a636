"""Fixtures for the attestation tests: a client of the real registry, keys, a fresh image per test.

Every test gets its own repository in the session registry, so what one test attaches (or
tampers with) never shows up in another.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import warnings
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from attest_support import KeyPair, loopback_name, make_key, missing
from attest_token_server import ISSUER, REFRESH_TOKEN, SERVICE, make_signing_cert, token_server

from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.envtest import free_port, wait_for

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


def _serve_registry(directory: Path, address: str, auth: str = "") -> Generator[str, None, None]:
    """Run docker-registry with an extra config section; yields ``host:port``."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(binary).exists():
        missing("docker-registry", "run `make deps` (apt-get install docker-registry)")
    host = f"{address}:{free_port(address)}"
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"{auth}http:\n  addr: {host}\n"
    )
    with open(directory / "registry.log", "wb") as log:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
        try:
            wait_for(lambda: _answers(f"http://{host}/v2/"), f"docker-registry on {host}", 30)
            yield host
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A docker-registry on 127.0.0.1 that requires basic auth (user ``ci``, password ``s3cret``)."""
    directory = tmp_path_factory.mktemp("auth-registry")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt through libxcrypt: what docker-registry's htpasswd expects

        hashed = crypt.crypt(
            "s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)
        )  # cost 4: fast tests
    (directory / "htpasswd").write_text(f"ci:{hashed}\n")
    auth = f"auth:\n  htpasswd:\n    realm: affidavit-test\n    path: {directory / 'htpasswd'}\n"
    yield from _serve_registry(directory, "127.0.0.1", auth)


@pytest.fixture(scope="module")
def named_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plain-HTTP docker-registry on 127.0.0.1, addressed by a host name that is not a loopback
    literal: to the client it is an ordinary remote host. Traffic stays on loopback."""
    name = loopback_name()
    if name is None:
        pytest.skip("this machine's host name does not resolve to a loopback address")
    server = _serve_registry(tmp_path_factory.mktemp("named-registry"), "127.0.0.1")
    host = next(server)
    try:
        yield host.replace("127.0.0.1", name, 1)
    finally:
        server.close()  # stops the registry


@dataclass(frozen=True)
class TokenRegistry:
    host: str
    realm: str
    granted: list[str]


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    """A docker-registry using Bearer tokens from a real token service (user ci / s3cret, or
    the identity token ``REFRESH_TOKEN``)."""
    directory = tmp_path_factory.mktemp("token-registry")
    key, cert_der, bundle = make_signing_cert(directory)
    with token_server(key, cert_der, "ci", "s3cret", REFRESH_TOKEN) as (realm, granted):
        auth = (
            f"auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n"
            f"    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n"
        )
        for host in _serve_registry(directory, "127.0.0.1", auth):
            yield TokenRegistry(host, realm, granted)


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True
