"""The webhook waits, bounded, for a serving certificate that is not written yet.

In the chart the operator container writes the certificate a few seconds after the Pod starts;
the webhook used to exit at once (`cannot load the TLS certificate`) and be restarted twice by
the kubelet. With --tls-wait-seconds it waits, says what for, and serves as soon as the files
appear; when they never do, it exits with the diagnostic, naming how long it waited.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from admission_support import Tls, make_signing, start_webhook, write_policies

from affidavit.envtest.certs import issue_cert


def test_webhook_waits_for_the_certificate_the_operator_writes_later(
    tmp_path: Path, tls: Tls
) -> None:
    write_policies(tmp_path / "policies", make_signing(tmp_path).public_pem)
    cert, key = tmp_path / "certs" / "tls.crt", tmp_path / "certs" / "tls.key"
    leaf = issue_cert(tls.ca, "affidavit-webhook", ip_sans=["127.0.0.1"])

    def operator_writes_the_certificate() -> None:
        # Once the webhook says it is waiting (or after 60 s, and the test fails).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            "waiting up to" in log.read_text() for log in tmp_path.glob("webhook-*.log")
        ):
            time.sleep(0.1)
        written_cert, written_key = leaf.write(tmp_path, "staged")
        cert.parent.mkdir()
        written_key.rename(key)
        written_cert.rename(cert)

    writer = threading.Thread(target=operator_writes_the_certificate)
    writer.start()
    try:
        hook = start_webhook(
            tmp_path,
            tls.ca.cert_pem,
            cert,
            key,
            args=[
                "--ledger", "", "--policy-dir", str(tmp_path / "policies"),
                "--tls-wait-seconds", "60",
            ],
        )  # fmt: skip
    finally:
        writer.join()
    try:
        assert hook.client.get(f"{hook.url}/healthz").text == "ok\n"
        assert hook.proc.poll() is None
        log = hook.log.read_text()
        assert f"for the TLS certificate {cert} and key {key} (written by the operator)" in log
    finally:
        hook.stop()


def test_webhook_gives_up_after_the_wait_and_says_so(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    proc = subprocess.run(
        [
            sys.executable, "-m", "affidavit.cli.main", "webhook", "serve",
            "--tls-cert", str(cert), "--tls-key", str(key),
            "--cluster-name", "prod-1", "--region", "eu-west-1", "--ledger", "",
            "--policy-dir", str(tmp_path), "--host", "127.0.0.1", "--port", "1",
            "--tls-wait-seconds", "1",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-2:] == [
        f"error: cannot load the TLS certificate {cert} and key {key} after waiting 1s: "
        f"[Errno 2] No such file or directory",
        "  hint: pass --tls-cert/--tls-key with a PEM certificate and its private key "
        "(in the chart the operator container writes them)",
    ]
