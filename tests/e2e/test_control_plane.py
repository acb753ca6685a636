"""Smoke tests of the real control plane that every other e2e test stands on.

They show that what ``affidavit.envtest`` starts is a working Kubernetes API, reachable both with
kubectl and with the Python ``kubernetes`` client through the generated kubeconfig and
``system:masters`` certificate: namespaces and Deployments are created, the controller manager
reconciles a Deployment into a ReplicaSet and a Pod, a CustomResourceDefinition is served, and a
ValidatingWebhookConfiguration whose ``clientConfig.url`` is an HTTPS server on 127.0.0.1 is
really called by the apiserver, whose denial reaches kubectl's stderr. Nothing here is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from affidavit.envtest import ControlPlane, ControlPlaneInfo, wait_for
from loopback_webhooks import LoopbackWebhook, loopback_webhook

pytestmark = pytest.mark.e2e

T = TypeVar("T")

#: Upper bound for anything the controllers do asynchronously; generous for 2-core CI.
SETTLE = 90.0


def eventually(probe: Callable[[], T | None], what: str, timeout: float = SETTLE) -> T:
    """``wait_for`` typed by what ``probe`` returns."""
    result: T = wait_for(probe, what, timeout, interval=0.25)
    return result


def deployment_manifest(namespace: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }


def owned_by(obj: dict[str, Any], kind: str, name: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("kind") == kind and r.get("name") == name for r in refs)


@pytest.fixture(scope="module")
def api(control_plane: ControlPlaneInfo) -> Iterator[Any]:
    new_client: Any = k8s_config.new_client_from_config  # untyped in some client versions
    api_client = new_client(config_file=str(control_plane.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


def test_readyz_and_version(control_plane: ControlPlaneInfo, kubectl: Any) -> None:
    assert control_plane.server.startswith("https://127.0.0.1:")
    assert kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    version = json.loads(kubectl("version", "-o", "json").stdout)
    # The ldflags took: a real version, not v0.0.0-master.
    assert version["serverVersion"]["gitVersion"].startswith("v1.")
    assert version["serverVersion"]["gitVersion"] == version["clientVersion"]["gitVersion"]


def test_identity_is_cluster_admin_under_rbac(kubectl: Any) -> None:
    assert kubectl("auth", "can-i", "*", "*", "--all-namespaces").stdout.strip() == "yes"
    # RBAC is on: an ordinary user may not list secrets.
    denied = kubectl("auth", "can-i", "list", "secrets", "--as=mallory", check=False)
    assert denied.stdout.strip() == "no"


def test_kubectl_deployment_gets_replicaset_and_pod(kubectl: Any) -> None:
    ns, name = "smoke-kubectl", "web"
    kubectl("create", "namespace", ns)
    kubectl("apply", "-f", "-", input=json.dumps(deployment_manifest(ns, name)))

    def replicaset() -> dict[str, Any] | None:
        items = json.loads(kubectl("get", "replicasets", "-n", ns, "-o", "json").stdout)["items"]
        return next((rs for rs in items if owned_by(rs, "Deployment", name)), None)

    rs = eventually(replicaset, f"a ReplicaSet of deployment {ns}/{name}")
    rs_name = rs["metadata"]["name"]

    def pod() -> dict[str, Any] | None:
        items = json.loads(kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
        return next((p for p in items if owned_by(p, "ReplicaSet", rs_name)), None)

    created = eventually(pod, f"a Pod of replicaset {ns}/{rs_name}")
    # No scheduler or kubelet: the Pod exists but is never scheduled.
    assert created["status"].get("phase", "Pending") == "Pending"


def test_python_client_deployment_gets_replicaset_and_pod(api: Any) -> None:
    core: Any = k8s.CoreV1Api(api)
    apps: Any = k8s.AppsV1Api(api)
    ns, name = "smoke-python", "api"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
    apps.create_namespaced_deployment(ns, deployment_manifest(ns, name))

    def replicaset() -> Any:
        return next(
            (
                rs
                for rs in apps.list_namespaced_replica_set(ns).items
                if any(r.name == name for r in rs.metadata.owner_references or [])
            ),
            None,
        )

    rs = eventually(replicaset, f"a ReplicaSet of deployment {ns}/{name}")

    def pod() -> Any:
        return next(
            (
                p
                for p in core.list_namespaced_pod(ns).items
                if any(r.name == rs.metadata.name for r in p.metadata.owner_references or [])
            ),
            None,
        )

    eventually(pod, f"a Pod of replicaset {ns}/{rs.metadata.name}")
    assert core.read_namespace(ns).status.phase == "Active"


CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.affidavit.test"},
    "spec": {
        "group": "smoke.affidavit.test",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                                "required": ["size"],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_installs_and_serves_objects(kubectl: Any, api: Any) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(CRD))
    kubectl(
        "wait",
        "--for=condition=Established",
        f"crd/{CRD['metadata']['name']}",
        f"--timeout={SETTLE:.0f}s",
        timeout=SETTLE + 10,
    )
    kubectl("create", "namespace", "smoke-crd")
    widget: dict[str, Any] = {
        "apiVersion": "smoke.affidavit.test/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "smoke-crd"},
        "spec": {"size": 3},
    }
    # Discovery of a new group can lag the Established condition by a moment.
    eventually(
        lambda: kubectl("apply", "-f", "-", input=json.dumps(widget), check=False).returncode == 0,
        "creating a Widget",
    )
    got: Any = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
        "smoke.affidavit.test", "v1", "smoke-crd", "widgets", "w1"
    )
    assert got["spec"] == {"size": 3}
    # The schema is enforced by the apiserver.
    bad = {**widget, "metadata": {"name": "w2", "namespace": "smoke-crd"}, "spec": {"size": 0}}
    rejected = kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert rejected.returncode != 0
    assert "spec.size" in rejected.stderr


# --- a webhook on 127.0.0.1 that the apiserver really calls -----------------------------------

DENIAL = "smoke webhook says no to"


def _deny_some(request: dict[str, Any]) -> dict[str, Any]:
    """Deny ConfigMaps whose name starts with ``deny-``."""
    name = request.get("name") or request["object"]["metadata"].get("name", "")
    if name.startswith("deny-"):
        return {"allowed": False, "status": {"code": 403, "message": f"{DENIAL} {name}"}}
    return {"allowed": True}


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[LoopbackWebhook]:
    """An HTTPS server on 127.0.0.1 that denies ConfigMaps whose name starts with ``deny-``."""
    with loopback_webhook(_deny_some, tmp_path, "smoke-webhook") as server:
        yield server


def test_validating_webhook_on_loopback_is_called(
    kubectl: Any, webhook_server: LoopbackWebhook
) -> None:
    ns = "smoke-webhook"
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, "smoke.affidavit.test/webhook=on")
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "smoke-webhook"},
        "webhooks": [
            {
                "name": "configmaps.smoke.affidavit.test",
                "clientConfig": {
                    **webhook_server.client_config(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"smoke.affidavit.test/webhook": "on"}},
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
            }
        ],
    }
    kubectl("apply", "-f", "-", input=json.dumps(config))
    try:
        # The apiserver picks up new webhook configurations asynchronously; until it does,
        # creates go through unchecked, so every attempt uses a new name.
        attempt = iter(range(10_000))

        def denied() -> Any:
            proc = kubectl("create", "configmap", f"deny-{next(attempt)}", "-n", ns, check=False)
            return proc if proc.returncode != 0 else None

        proc = eventually(denied, "the webhook denying a ConfigMap")
        assert DENIAL in proc.stderr, proc.stderr
        assert "deny-" in proc.stderr

        review = webhook_server.reviews[-1]
        assert review["apiVersion"] == "admission.k8s.io/v1"
        assert review["kind"] == "AdmissionReview"
        assert review["request"]["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        assert review["request"]["namespace"] == ns
        assert review["request"]["operation"] == "CREATE"
        assert "system:masters" in review["request"]["userInfo"]["groups"]

        # An allowed object passes through the same webhook.
        calls = len(webhook_server.reviews)
        kubectl("create", "configmap", "fine", "-n", ns)
        assert len(webhook_server.reviews) == calls + 1
        assert webhook_server.reviews[-1]["request"]["name"] == "fine"
    finally:
        kubectl("delete", "validatingwebhookconfiguration", "smoke-webhook", check=False)


# --- no process outlives its owner -------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_stop_leaves_no_process(control_plane: ControlPlaneInfo, tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "cp", with_controller_manager=False)
    with plane as info:
        pids = plane.pids
        assert set(pids) == {"etcd", "kube-apiserver"}
        assert info.kubeconfig.is_file()
    assert plane.pids == {}
    assert not [pid for pid in pids.values() if _alive(pid)]


def test_children_die_with_a_killed_parent(control_plane: ControlPlaneInfo, tmp_path: Path) -> None:
    """Even a SIGKILLed Python (no atexit, no finally) takes the components with it."""
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from affidavit.envtest import ControlPlane\n"
        "plane = ControlPlane(Path(sys.argv[1]), with_controller_manager=False)\n"
        "plane.start()\n"
        "print(json.dumps(plane.pids), flush=True)\n"
        "time.sleep(600)\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "cp")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, "the child Python exited before starting its control plane"
        pids: dict[str, int] = json.loads(line)
        assert set(pids) == {"etcd", "kube-apiserver"}
        assert all(_alive(pid) for pid in pids.values())
    finally:
        parent.kill()
        parent.wait(timeout=30)
    eventually(
        lambda: not [pid for pid in pids.values() if _alive(pid)],
        "components exiting after their parent was killed",
        timeout=30,
    )
