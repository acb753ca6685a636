"""The operator from the image, run the way a Pod runs it (read-only root, only /tmp writable,
the image's environment, no USER or LOGNAME) as a uid that has no /etc/passwd entry, against the
real control plane: it starts (kopf's default identity asked getpwuid() and crash-looped), and
its /readyz turns 200 once it has published the policy index."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from affidavit.envtest import ControlPlaneInfo, free_port
from image_builds import REPO, Layout, image_env, rootfs_argv, unpacked_rootfs

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
NAMESPACE = "affidavit-image-e2e"

pytestmark = pytest.mark.timeout(2400)  # the first session builds the image (minutes)


def test_operator_runs_as_a_uid_without_passwd_entry(
    image_layout: Layout, control_plane: ControlPlaneInfo, kubectl: Kubectl, tmp_path: Path
) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", REPO / "charts/affidavit/crds")
    kubectl("create", "namespace", NAMESPACE, check=False)
    rootfs = unpacked_rootfs(image_layout)
    assert ":65533:" not in (rootfs / "etc/passwd").read_text()
    tmp = tmp_path / "podtmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_bytes(control_plane.kubeconfig.read_bytes())
    os.chmod(kubeconfig, 0o644)
    ready = f"http://127.0.0.1:{free_port()}/readyz"
    argv = [
        "affidavit", "operator", "run", "--namespace", NAMESPACE,
        "--kubeconfig", "/tmp/kubeconfig", "--no-manage-certificates",
        # the session operator's identity, so both write the same status to shared policies
        "--cluster-name", "e2e-cluster", "--region", "eu-west-1",
        "--readiness", ready,
    ]  # fmt: skip
    log = tmp_path / "operator.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            rootfs_argv(rootfs, argv, env=image_env(image_layout), user="65533:65533", tmp=tmp),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        answer = ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(ready, timeout=5)
                answer = response.text
                if response.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        text = log.read_text(errors="replace")
        assert proc.poll() is None, f"the operator exited {proc.returncode}:\n{text[-3000:]}"
        assert answer.startswith("ok: policy index sha256:"), f"{answer!r}\n{text[-3000:]}"
        assert "getpwuid" not in text
        # SIGTERM reaches the operator as a kubelet's does (unshare itself ignores it while it
        # waits): it stops cleanly, well within a Pod's grace period.
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=30)
        assert code == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
