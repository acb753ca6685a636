"""The kube-apiserver restarted while the operator runs: the operator reconnects by itself, the
published policy index stays in place through the outage, and afterwards follows every change
(a policy added, one deleted) and /readyz names the current index.

A control plane of the test's own (the session's shared one is never restarted): its
kube-apiserver is stopped with SIGTERM and started again on the same port with the same
certificates and etcd, the way a control-plane upgrade or crash looks to its clients.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from operator_support import CRDS

from affidavit.envtest import ControlPlane, free_port, wait_for
from control_planes import restartable_control_plane

NS = "affidavit-restart-e2e"


class Cluster:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        info = self.plane.info
        argv = [str(info.kubectl), f"--kubeconfig={info.kubeconfig}", *args]
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=60, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
            )
        return proc.stdout

    def apply_policy(self, name: str) -> None:
        obj = {
            "apiVersion": "affidavit.dev/v1alpha1",
            "kind": "AccountabilityPolicy",
            "metadata": {"name": name},
            "spec": {"mode": "Enforce", "match": {"images": [f"registry.example/{name}/*"]}},
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def index(self) -> tuple[list[str], str] | None:
        """The published index's policy names and its digest (checked against the data)."""
        out = self.kubectl("get", "configmap", "affidavit-policy-index", "-n", NS, "-o", "json",
                           check=False)  # fmt: skip
        if not out:
            return None
        cm = json.loads(out)
        text = cm["data"]["index.json"]
        digest = cm["metadata"]["annotations"]["affidavit.dev/index-digest"]
        assert digest == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        return sorted(p["name"] for p in json.loads(text)["policies"]), digest


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with restartable_control_plane(tmp_path_factory.mktemp("restart-plane")) as plane:
        c = Cluster(plane)
        c.kubectl("apply", "--server-side", "-f", str(CRDS))
        for crd in CRDS.glob("*.yaml"):
            name = crd.name.removesuffix(".yaml")
            c.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
        c.kubectl("create", "namespace", NS)
        yield c


def _ready(url: str) -> Any:
    try:
        r = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    return r.status_code == 200 and r.text


def test_the_operator_reconnects_after_an_apiserver_restart_and_keeps_the_index_current(
    cluster: Cluster, tmp_path: Path
) -> None:
    readiness = f"http://127.0.0.1:{free_port()}/readyz"
    log = tmp_path / "operator.log"
    argv = [
        sys.executable, "-m", "affidavit.cli", "operator", "run",
        "--namespace", NS,
        "--kubeconfig", str(cluster.plane.info.kubeconfig),
        "--cluster-name", "restart-cluster",
        "--region", "eu-west-1",
        "--no-manage-certificates",
        "--resync-seconds", "30",
        "--readiness", readiness,
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        cluster.apply_policy("before")
        wait_for(
            lambda: (i := cluster.index()) and i[0] == ["before"],
            "the operator to publish 'before'",
            timeout=90,
        )
        cluster.plane.restart("kube-apiserver")
        # The index published before the outage is still there, unchanged.
        assert (cluster.index() or [None])[0] == ["before"]
        cluster.apply_policy("after")
        wait_for(
            lambda: (i := cluster.index()) and i[0] == ["after", "before"],
            "the operator to publish 'after' once the apiserver is back",
            timeout=90,
        )
        cluster.kubectl("delete", "accountabilitypolicy", "before")
        _names, digest = wait_for(
            lambda: (i := cluster.index()) and i[0] == ["after"] and i,
            "the operator to drop 'before'",
            timeout=90,
        )
        text = wait_for(
            lambda: (t := _ready(readiness)) and digest in t and t, "/readyz to name the index"
        )
        assert text == f"ok: policy index {digest} published\n"
        assert proc.poll() is None, "the operator exited during the apiserver restart"
    except BaseException:
        print("--- operator log ---\n" + log.read_text(errors="replace")[-6000:])
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
