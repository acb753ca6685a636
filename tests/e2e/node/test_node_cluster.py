"""The node harness itself: a Ready node at the pinned versions, and a second node started by
``python -m affidavit.envtest --node`` (what ``make cluster`` runs) beside the session's node,
stopped with SIGINT, leaving nothing behind on the machine: no process, interface, route, mount,
nftables rule, cgroup or kernel setting of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from node_e2e_support import Run, wait_for

from affidavit.envtest import NodeInfo, pinned_versions
from affidavit.envtest.cgroups import PREFIX, hierarchies
from affidavit.envtest.namespaces import KERNEL_TUNABLES

pytestmark = pytest.mark.timeout(900)


def test_the_node_is_ready_at_the_pinned_versions(node: NodeInfo, node_kubectl: Run) -> None:
    info = json.loads(node_kubectl("get", "node", node.name, "-o", "json").stdout)
    ready = {c["type"]: c["status"] for c in info["status"]["conditions"]}["Ready"]
    assert ready == "True"
    versions = info["status"]["nodeInfo"]
    pins = pinned_versions()
    assert versions["kubeletVersion"] == pins["K8S_VERSION"]
    assert versions["kubeProxyVersion"] in {"", pins["K8S_VERSION"]}
    assert (
        versions["containerRuntimeVersion"]
        == f"containerd://{pins['CONTAINERD_VERSION'].lstrip('v')}"
    )
    addresses = {a["type"]: a["address"] for a in info["status"]["addresses"]}
    assert addresses["InternalIP"] == node.ip
    # The node's kernel tunables are files in its namespace; the machine's are untouched.
    for rel, before in node.tunables.items():
        assert Path("/proc/sys", rel).read_text().strip() == before, rel


def _host_state() -> dict[str, object]:
    """What a node could leave behind on the machine, as seen from the host's namespaces."""

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout

    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if any(k in line for k in ("kubelet", "containerd", "/run/netns", "cni", "affidavit-node"))
    ]
    return {
        "links": sorted(
            name
            for line in run("ip", "-o", "link").splitlines()
            if (name := line.split(":")[1].strip().split("@")[0]).startswith(("cni", "veth"))
        ),
        "routes": run("ip", "route"),
        "nft": run("nft", "list", "tables"),
        "mounts": sorted(mounts),
        "tunables": {
            rel: Path("/proc/sys", rel).read_text()
            for rel in KERNEL_TUNABLES
            if Path("/proc/sys", rel).exists()
        },
        "paths": {
            p: os.path.exists(p)
            for p in (
                "/var/lib/cni",
                "/var/lib/kubelet",
                "/etc/cni",
                "/run/containerd",
                "/var/log/pods",
            )
        },
    }


def test_a_second_node_beside_the_first_stops_on_sigint_leaving_nothing_behind(
    node: NodeInfo,
) -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="affidavit-node-second-"))
    before = _host_state()
    ready = tmp_path / "ready.json"
    log = (tmp_path / "envtest.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "affidavit.envtest", "--node", "--ready-file", str(ready),
         str(tmp_path / "second")],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, "the second node", 400)
        assert proc.poll() is None, (tmp_path / "envtest.log").read_text()[-3000:]
        facts = json.loads(ready.read_text())
        anchor = facts["anchor_pid"]
        # Both nodes answer, each in its own namespaces, at the same addresses inside.
        out = subprocess.run(
            [str(node.control_plane.kubectl), f"--kubeconfig={facts['kubeconfig']}",
             "get", "nodes", "-o", "name"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert out.split() == ["node/affidavit-node"]
        assert os.readlink(f"/proc/{anchor}/ns/net") != os.readlink(
            f"/proc/{node.namespaces.pid}/ns/net"
        )
        cgroup = f"{PREFIX}{proc.pid}-"
        assert any(list(h.glob(f"{cgroup}*")) for h in hierarchies())
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=180)
        log.close()
    assert code == 0, (tmp_path / "envtest.log").read_text()[-3000:]
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert not Path(f"/proc/{anchor}").exists()
    assert not any(list(h.glob(f"{cgroup}*")) for h in hierarchies())
    deadline = time.monotonic() + 10
    while _host_state() != before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _host_state() == before
