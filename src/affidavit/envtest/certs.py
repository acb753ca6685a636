"""Small certificate authority for tests and the demo, made with ``cryptography``.

A real kube-apiserver only talks TLS: it needs a serving certificate, a CA to verify client
certificates, and a webhook it calls must present a certificate whose CA is in the
``caBundle``. kopf's own self-signed helpers fail on OpenSSL >= 3.0.10, so every certificate the
project needs at test or demo time is made here (built by :mod:`affidavit.pki`, which the
operator shares): :func:`make_ca` makes a CA and
:func:`issue_cert` a leaf signed by it (server or client, with IP and DNS SANs and an optional
organization, which Kubernetes reads as the group, e.g. ``system:masters``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from affidavit import pki

__all__ = ["CertKeyPair", "issue_cert", "make_ca", "make_rsa_key_pem", "public_key_pem"]

#: Validity of every certificate made here: long enough for a demo left running, short
#: enough that nobody mistakes these for real credentials.
DEFAULT_VALID_DAYS = 30
#: Backdate ``notBefore`` a little so a peer with a slightly slow clock accepts the cert.
_BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class CertKeyPair:
    """A PEM certificate and its PEM private key (PKCS#8, unencrypted)."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise TypeError(f"unsupported key type {type(key).__name__}")
        return key

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``<name>.crt`` and ``<name>.key`` (mode 0600) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / f"{name}.crt"
        key_path = directory / f"{name}.key"
        cert_path.write_bytes(self.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)
        return cert_path, key_path


def make_ca(common_name: str, *, valid_days: int = DEFAULT_VALID_DAYS) -> CertKeyPair:
    """A self-signed CA certificate (ECDSA P-256) that may sign leaf certificates."""
    key = pki.new_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = pki.build_ca(
        key,
        pki.subject_name(common_name),
        now - _BACKDATE,
        now + datetime.timedelta(days=valid_days),
    )
    return CertKeyPair(cert.public_bytes(serialization.Encoding.PEM), pki.key_pem(key))


def issue_cert(
    ca: CertKeyPair,
    common_name: str,
    *,
    ip_sans: Sequence[str] = (),
    dns_sans: Sequence[str] = (),
    client: bool = False,
    server: bool | None = None,
    organization: str | None = None,
    valid_days: int = DEFAULT_VALID_DAYS,
) -> CertKeyPair:
    """A leaf certificate (ECDSA P-256) signed by ``ca``.

    ``client=True`` makes a client certificate (extended key usage clientAuth); by default the
    certificate is a server one (serverAuth). ``server=True`` together with ``client=True`` makes
    one usable for both. Go verifies only the SANs, never the CN, so a server certificate for
    ``https://127.0.0.1:<port>`` needs ``ip_sans=["127.0.0.1"]``. ``organization`` is what
    Kubernetes reads as the user's group (``system:masters`` is cluster-admin).
    """
    key = pki.new_key()
    now = datetime.datetime.now(datetime.UTC)
    usages = []
    if server if server is not None else not client:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    cert = pki.build_leaf(
        ca.certificate.subject,
        ca.private_key(),
        key,
        pki.subject_name(common_name, organization),
        now - _BACKDATE,
        now + datetime.timedelta(days=valid_days),
        usages=usages,
        dns_sans=dns_sans,
        ip_sans=ip_sans,
    )
    return CertKeyPair(cert.public_bytes(serialization.Encoding.PEM), pki.key_pem(key))


def make_rsa_key_pem(bits: int = 2048) -> bytes:
    """A fresh RSA private key in PEM (PKCS#8), e.g. the service-account signing key."""
    return pki.key_pem(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def public_key_pem(private_key_pem: bytes) -> bytes:
    """The PEM SubjectPublicKeyInfo of a PEM private key."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
