"""`affidavit operator run` refuses impossible settings before touching the cluster, with the
exact diagnostic and exit code (no stack trace)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "affidavit.cli", "operator", "run", "--namespace", "ns", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_plain_http_webhook_url_is_refused() -> None:
    proc = run("--webhook-url", "http://127.0.0.1:8443/validate")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: --webhook-url 'http://127.0.0.1:8443/validate' is not an https:// URL\n"
        "  hint: the kube-apiserver only calls webhooks over https, e.g. "
        "https://127.0.0.1:8443/validate\n"
    )


def test_renew_fraction_out_of_range_is_refused() -> None:
    proc = run("--cert-renew-fraction", "1.5")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: --cert-renew-fraction must be between 0 and 1; found 1.5\n"
        "  hint: 0.33 renews the certificate when a third of its lifetime is left\n"
    )


def test_unreadable_kubeconfig_is_a_cluster_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.kubeconfig"
    proc = run("--kubeconfig", str(missing))
    assert proc.returncode == 7
    assert proc.stderr.startswith(f"error: cannot load Kubernetes credentials from {missing}: ")
    assert proc.stderr.endswith(
        "  hint: pass --kubeconfig FILE, or run inside a pod with a service account\n"
    )
    assert "Traceback" not in proc.stderr
