"""The ``affidavit`` console script as a container's PID 1: SIGTERM stops it at once.

The kernel drops a signal PID 1 has no handler for, so a webhook waiting for its certificate (or
a process still importing) ignored the kubelet's SIGTERM and was SIGKILLed 30 s later with
nothing logged. Run here as PID 1 of a fresh PID namespace (``unshare --pid --fork``), the way
containerd runs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from affidavit.envtest import wait_for

AFFIDAVIT = Path(sys.executable).parent / "affidavit"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root and unshare (util-linux) for a PID namespace",
)


def _child_pid(unshare_pid: int) -> int:
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children")
    pids: list[str] = wait_for(
        lambda: children.read_text().split(), "unshare to start a child", 30, interval=0.05
    )
    return int(pids[0])


def test_sigterm_stops_a_webhook_waiting_for_its_certificate_as_pid_1(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--", str(AFFIDAVIT), "webhook", "serve",
         "--tls-cert", str(tmp_path / "tls.crt"), "--tls-key", str(tmp_path / "tls.key"),
         "--tls-wait-seconds", "120", "--cluster-name", "c", "--region", "r",
         "--policy-dir", str(tmp_path), "--ledger", f"sqlite:///{tmp_path / 'ledger.db'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        inner = _child_pid(proc.pid)
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and "waiting up to" not in line:
            line = proc.stderr.readline()
        assert "for the TLS certificate" in line
        (nspid,) = [
            line for line in Path(f"/proc/{inner}/status").read_text().splitlines()
            if line.startswith("NSpid:")
        ]  # fmt: skip
        assert nspid.split()[-1] == "1"  # PID 1 in its namespace
        os.kill(inner, signal.SIGTERM)
        code = proc.wait(timeout=60)  # before the fix: ignored, still waiting after 120 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 128 + signal.SIGTERM
