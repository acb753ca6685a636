"""`--metrics-port` serves the webhook's Prometheus metrics over plain HTTP on a port of its own
(what the chart's ServiceMonitor scrapes), counting the same decisions as the TLS /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
from admission_support import Images, Tls, review, start_webhook

from affidavit.envtest import free_port


def test_metrics_on_their_own_port(tmp_path: Path, tls: Tls, images: Images, workdir: Path) -> None:
    port = free_port()
    hook = start_webhook(
        tmp_path,
        tls.ca.cert_pem,
        tls.cert,
        tls.key,
        args=[
            "--ledger", "", "--policy-dir", str(workdir / "policies"),
            "--metrics-port", str(port),
        ],
    )  # fmt: skip
    try:
        assert hook.validate(review(images.bare)).json()["response"]["allowed"] is False
        plain = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert plain.status_code == 200
        line = 'affidavit_decisions_total{namespace="shop",outcome="denied"} 1.0'
        assert line in plain.text.splitlines()
        assert line in hook.client.get(f"{hook.url}/metrics").text.splitlines()
    finally:
        hook.stop()
