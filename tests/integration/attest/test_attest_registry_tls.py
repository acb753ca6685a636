"""The registry client's TLS trust: certifi's CAs by default (or ``$SSL_CERT_FILE``, as httpx
reads it), a ``--ca-bundle`` when given, and a certificate no trusted CA issued is refused.

The default CAs load at the first TLS handshake, not when a client is made (a verify against a
plain-HTTP registry never needs them); these tests show the laziness changes no verdict. Against
a real docker-registry serving TLS with a certificate from a CA made here, on 127.0.0.1 but
addressed by this machine's host name, so that the client treats it as a remote host.
"""

from __future__ import annotations

import datetime
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from attest_support import loopback_name
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.registry_transport import DefaultTrust
from affidavit.envtest.process import free_port
from affidavit.errors import RegistryError
from affidavit.pki import build_ca, build_leaf, key_pem, new_key, subject_name


@dataclass(frozen=True)
class TlsRegistry:
    host: str  # NAME:PORT
    ca: Path  # the CA that issued its certificate (PEM)


def _ca_and_leaf(directory: Path, name: str) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=1)
    ca_key, leaf_key = new_key(), new_key()
    ca = build_ca(ca_key, subject_name("affidavit test registry CA"), start, end)
    leaf = build_leaf(
        ca.subject, ca_key, leaf_key, subject_name(name), start, end,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH], dns_sans=[name],
    )  # fmt: skip
    paths = directory / "ca.pem", directory / "tls.crt", directory / "tls.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key_pem(leaf_key))
    return paths


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistry]:
    name = loopback_name()
    if name is None:
        pytest.skip("this machine's host name does not resolve to a loopback address")
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    directory = tmp_path_factory.mktemp("tls-registry")
    ca, cert, key = _ca_and_leaf(directory, name)
    port = free_port()
    (directory / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {cert}\n    key: {key}\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(directory / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        trusting = ssl.create_default_context(cafile=str(ca))
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                    trusting.wrap_socket(raw, server_hostname=name).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the TLS docker-registry did not start") from None
                time.sleep(0.1)
        yield TlsRegistry(f"{name}:{port}", ca)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_certificate_from_an_untrusted_ca_is_refused(tls_registry: TlsRegistry) -> None:
    ref = ImageReference.parse(f"{tls_registry.host}/app:v1")
    with RegistryClient() as client, pytest.raises(RegistryError) as caught:
        client.find_manifest(ref)
    assert caught.value.message.startswith(
        f"registry {tls_registry.host} is unreachable: TLS failed"
    )
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message


def test_the_ca_bundle_is_trusted(tls_registry: TlsRegistry) -> None:
    ref = ImageReference.parse(f"{tls_registry.host}/app:v1")
    with RegistryClient(ca_bundle=tls_registry.ca) as client:
        digest = push_sample_image(client, ref, {"a": b"1"}, "v1")
        assert client.resolve(ref) == digest


def test_ssl_cert_file_is_read_at_the_first_handshake(
    tls_registry: TlsRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = ImageReference.parse(f"{tls_registry.host}/app:v2")
    with RegistryClient() as client:
        monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.ca))  # after the client was made
        digest = push_sample_image(client, ref, {"b": b"2"}, "v2")
        assert client.resolve(ref) == digest


def test_default_trust_loads_its_cas_only_for_a_handshake(tls_registry: TlsRegistry) -> None:
    trust = DefaultTrust()
    assert (trust.verify_mode, trust.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert trust.cert_store_stats()["x509_ca"] == 0
    name, port = tls_registry.host.rsplit(":", 1)
    with (
        socket.create_connection(("127.0.0.1", int(port)), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        trust.wrap_socket(raw, server_hostname=name)
    assert trust.cert_store_stats()["x509_ca"] > 100  # certifi's bundle
