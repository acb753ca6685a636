"""Certificates shaped like Fulcio's, for what no test needs a real Fulcio for: reading the
extensions (tests/unit/signing) and what-if evidence, whose signatures are never checked
(tests/unit/cli). The real Fulcio's are read in tests/e2e/admission."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ObjectIdentifier


def utf8(text: str) -> bytes:
    """``text`` as a DER UTF8String, as Fulcio writes its extensions."""
    body = text.encode()
    if len(body) < 128:
        return bytes([0x0C, len(body)]) + body
    return bytes([0x0C, 0x82]) + len(body).to_bytes(2, "big") + body


def cert(extensions: dict[ObjectIdentifier, bytes], uri: str | None = None) -> x509.Certificate:
    """A self-signed certificate carrying ``extensions`` (raw values), and ``uri`` as its
    subject alternative name where given, and nothing else."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "sigstore-intermediate")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(minutes=10))
    )
    if uri is not None:
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)])
        builder = builder.add_extension(san, critical=False)
    for oid, value in extensions.items():
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    return builder.sign(key, hashes.SHA256())
