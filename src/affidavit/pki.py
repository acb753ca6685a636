"""Building X.509 CAs and leaf certificates, for the operator and for envtest alike.

The operator makes the webhook's one-shot CA and serving certificate; envtest makes the control
plane's CAs, serving and client certificates. Both build the same two shapes (a path-length-0
CA that may sign, an ECDSA P-256 leaf with SANs and extended key usages) with ``cryptography``
(kopf's own helpers fail on OpenSSL >= 3.0.10), so the building lives here, outside the
layers: the operator may not import envtest, and envtest should not import the operator.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

__all__ = ["build_ca", "build_leaf", "key_pem", "new_key", "subject_name"]


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """A private key in PEM (PKCS#8, unencrypted)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def subject_name(common_name: str, organization: str | None = None) -> x509.Name:
    """``O=organization, CN=common_name`` (the organization only when given)."""
    attrs = []
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def build_ca(
    key: ec.EllipticCurvePrivateKey,
    name: x509.Name,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.Certificate:
    """A self-signed CA certificate (path length 0) for ``key``."""
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_leaf(
    issuer: x509.Name,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    key: ec.EllipticCurvePrivateKey,
    name: x509.Name,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    *,
    usages: Sequence[x509.ObjectIdentifier],
    dns_sans: Sequence[str] = (),
    ip_sans: Sequence[str] = (),
) -> x509.Certificate:
    """A leaf certificate for ``key`` signed by ``issuer_key`` (extended key ``usages``).

    Go verifies only the SANs, never the CN, so a server certificate for
    ``https://127.0.0.1:<port>`` needs ``ip_sans=["127.0.0.1"]``.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_sans]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_sans]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())
