"""The server around the webhook: the serving certificate is reloaded when its files change (the
operator rotates it) for clients that send no SNI, as the apiserver dialling an IP does, and the
metrics date the certificate served (an alert's evidence that renewal stopped); and with the
ledger database unreachable, decisions are buffered and the response says so."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
from admission_support import Images, Tls, free_port, review, start_webhook
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from affidavit.envtest import wait_for
from affidavit.envtest.certs import issue_cert


def _served_serial(port: int, ca: Path) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False  # no SNI: the apiserver dials https://127.0.0.1:PORT
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        ctx.wrap_socket(raw, server_hostname=None) as tls_sock,
    ):
        der = tls_sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_rotated_certificate_is_served_without_restart(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path
) -> None:
    first = issue_cert(tls.ca, "affidavit-webhook", ip_sans=["127.0.0.1"], valid_days=30)
    cert, key = first.write(tmp_path, "serving")
    metrics = free_port()
    hook = start_webhook(
        tmp_path,
        tls.ca.cert_pem,
        cert,
        key,
        args=[
            "--ledger",
            "",
            "--policy-dir",
            str(workdir / "policies"),
            "--registry-allowed-host",  # the policies' globs (`*/strict/*`) name no registry
            images.host,
            "--metrics-port",
            str(metrics),
        ],
    )
    try:
        port = int(hook.url.rsplit(":", 1)[1])
        ca = tmp_path / "ca.pem"
        assert _served_serial(port, ca) == first.certificate.serial_number
        assert _served_validity(metrics) == _validity(first.certificate)
        second = issue_cert(tls.ca, "affidavit-webhook", ip_sans=["127.0.0.1"], valid_days=90)
        second.write(tmp_path, "serving")
        wait_for(
            lambda: _served_serial(port, ca) == second.certificate.serial_number,
            "the webhook to serve the new certificate",
            20,
            interval=0.3,
        )
        # the app still answers over the new certificate, and the metrics date the new one
        assert hook.validate(review(images.good)).json()["response"]["allowed"] is True
        assert _served_validity(metrics) == _validity(second.certificate)
    finally:
        hook.stop()


def _validity(cert: x509.Certificate) -> tuple[float, float]:
    return cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()


def _served_validity(metrics_port: int) -> tuple[float, float]:
    """The served certificate's notBefore and notAfter, as the metrics port exports them."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return (
        values["affidavit_serving_certificate_not_before_timestamp_seconds"],
        values["affidavit_serving_certificate_not_after_timestamp_seconds"],
    )


def test_unreachable_ledger_buffers_and_says_so(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path, closed_port: str
) -> None:
    hook = start_webhook(
        tmp_path,
        tls.ca.cert_pem,
        tls.cert,
        tls.key,
        args=[
            "--ledger",
            f"postgresql+psycopg://affidavit@{closed_port}/ledger",
            "--policy-dir",
            str(workdir / "policies"),
            "--registry-allowed-host",
            images.host,
        ],
    )
    try:
        response = hook.validate(review(images.good, uid="u-buf")).json()["response"]
        assert response["allowed"] is True
        decision_id = response["auditAnnotations"]["decision"]
        assert response["warnings"] == [
            f"ledger unavailable, decision buffered (decision {decision_id})"
        ]
        assert hook.metric("affidavit_ledger_buffered_total") == 1
    finally:
        hook.stop()
