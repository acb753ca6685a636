"""The webhook's serving certificate on a real control plane: stored in the Secret and the cert
dir, trusted through the webhook configuration's caBundle, served over real TLS, and rotated
before it expires without a moment in which the apiserver would distrust the webhook."""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from operator_support import (
    CERT_LIFETIME,
    NAMESPACE,
    WEBHOOK_CONFIGURATION,
    Kubectl,
    RunningOperator,
    get_json,
)

from affidavit.envtest import free_port, wait_for


def secret_data(kubectl: Kubectl) -> dict[str, bytes] | None:
    s = get_json(kubectl, "secret", "affidavit-webhook-tls", "-n", NAMESPACE)
    if not s:
        return None
    return {k: base64.b64decode(v) for k, v in s["data"].items()}


def ca_bundle(kubectl: Kubectl) -> bytes:
    vwc = get_json(kubectl, "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION)
    return base64.b64decode(vwc["webhooks"][0]["clientConfig"].get("caBundle", ""))


def consistent(kubectl: Kubectl, op: RunningOperator) -> dict[str, bytes] | None:
    """The Secret, once the cert dir and caBundle both match it."""
    data = secret_data(kubectl)
    if not data or ca_bundle(kubectl) != data["ca.crt"]:
        return None
    files = {n: (op.cert_dir / n).read_bytes() for n in data if (op.cert_dir / n).exists()}
    return data if files == data else None


def serve_once(cert_dir: Path, port: int) -> threading.Thread:
    """A TLS server with the operator's files, accepting one handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_dir / "tls.crt", cert_dir / "tls.key")
    srv = socket.create_server(("127.0.0.1", port))

    def run() -> None:
        with srv:
            conn, _ = srv.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def handshake(port: int, cafile_pem: bytes) -> dict[str, Any]:
    ctx = ssl.create_default_context(cadata=cafile_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        peer = tls.getpeercert()
        tls.send(b"x")
        assert peer is not None
        return dict(peer)


def test_secret_cert_dir_and_ca_bundle_agree(operator: RunningOperator, kubectl: Kubectl) -> None:
    data = wait_for(lambda: consistent(kubectl, operator), "Secret, cert dir and caBundle")
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    s = get_json(kubectl, "secret", "affidavit-webhook-tls", "-n", NAMESPACE)
    assert s["type"] == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        "affidavit",
        f"affidavit.{NAMESPACE}",
        f"affidavit.{NAMESPACE}.svc",
        f"affidavit.{NAMESPACE}.svc.cluster.local",
    }
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert oct((operator.cert_dir / "tls.key").stat().st_mode & 0o777) == "0o600"


def test_the_served_certificate_verifies_against_the_ca_bundle(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    wait_for(lambda: consistent(kubectl, operator), "Secret, cert dir and caBundle")
    port = free_port()
    t = serve_once(operator.cert_dir, port)
    peer = handshake(port, ca_bundle(kubectl))
    t.join(timeout=5)
    assert ("IP Address", "127.0.0.1") in peer["subjectAltName"]


def test_certificate_rotates_before_expiry_with_overlapping_trust(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    first = wait_for(lambda: consistent(kubectl, operator), "Secret, cert dir and caBundle")
    first_cert = x509.load_pem_x509_certificate(first["tls.crt"])
    first_ca = x509.load_pem_x509_certificates(first["ca.crt"])[0]

    def rotated() -> dict[str, bytes] | None:
        d = consistent(kubectl, operator)
        return d if d and d["tls.crt"] != first["tls.crt"] else None

    second = wait_for(rotated, "the certificate to rotate", timeout=CERT_LIFETIME * 3)
    second_cert = x509.load_pem_x509_certificate(second["tls.crt"])
    # renewed while the old one was still valid
    assert second_cert.not_valid_before_utc < first_cert.not_valid_after_utc
    assert second_cert.serial_number != first_cert.serial_number
    # the new bundle trusts the new CA first and still the previous CA (no trust gap)
    bundle = x509.load_pem_x509_certificates(second["ca.crt"])
    assert bundle[0].subject == second_cert.issuer
    assert (
        first_ca in bundle[1:] or first_ca.not_valid_after_utc <= second_cert.not_valid_before_utc
    )
