"""The chart's signed ledger checkpoints: ``ledger.signingKey`` and ``ledger.checkpoints``.

Rendered with ``helm template``: without a key nothing changes and NOTES say how to make one;
with ``ledger.signingKey.existingSecret`` the Ed25519 key is mounted read-only into the webhook
container only (group-readable for the Pod's fsGroup, nobody else) and named by
``AFFIDAVIT_LEDGER_KEY``, the directory trail is on the ledger volume, and the newest checkpoints
go to a ConfigMap whose name is the only one the Role lets the ServiceAccount update or patch.

On the real apiserver, as the chart's ServiceAccount (its rendered RBAC and a TokenRequest
token): the webhook's ConfigMap trail creates and then patches its checkpoint ConfigMap, and
cannot patch any other ConfigMap of the namespace nor write in another namespace. It can create
a new ConfigMap in its namespace: Kubernetes RBAC cannot limit ``create`` by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_support import CHART, KUBE_VERSION_ARGS, Render, run_helm
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from affidavit.admission.checkpoint_trail import ConfigMapTrail
from affidavit.envtest import ControlPlaneInfo
from affidavit.kubeconfig import api_client

KEY = ("--set", "ledger.signingKey.existingSecret=affidavit-ledger-key")
CHECKPOINT_ENV = {
    "AFFIDAVIT_LEDGER_KEY",
    "AFFIDAVIT_CHECKPOINT_DIR",
    "AFFIDAVIT_CHECKPOINT_EVERY",
    "AFFIDAVIT_CHECKPOINT_INTERVAL",
    "AFFIDAVIT_CHECKPOINT_CONFIGMAP",
}


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def _containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"]}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container["env"]}


def _checkpoint_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for r in _one(docs, "Role")["rules"]
        if r["resources"] == ["configmaps"] and "checkpoints" in str(r.get("resourceNames"))
    ]


def _notes(helm: Path, control_plane: ControlPlaneInfo, *args: str) -> str:
    out = run_helm(helm, "install", "affidavit", CHART, "--dry-run=client", "--namespace",
                   "affidavit-system", *args, env=control_plane.env())  # fmt: skip
    return out.stdout.split("NOTES:\n", 1)[1]


def test_without_a_key_nothing_is_signed_and_notes_say_how(
    render: Render, helm: Path, control_plane: ControlPlaneInfo
) -> None:
    docs = render()
    for container in _containers(docs).values():
        assert not CHECKPOINT_ENV & set(_env(container))
        assert "ledger-key" not in {m["name"] for m in container["volumeMounts"]}
    assert _checkpoint_rules(docs) == []
    text = _notes(helm, control_plane)
    assert "NOTE: the ledger's head is not signed" in text
    assert (
        "  kubectl -n affidavit-system create secret generic affidavit-ledger-key "
        "--from-file=ledger.key=affidavit-ledger.key\n"
        "  helm upgrade affidavit ... --set ledger.signingKey.existingSecret=affidavit-ledger-key"
    ) in text


def test_the_key_is_mounted_read_only_into_the_webhook_only(
    render: Render, helm: Path, control_plane: ControlPlaneInfo
) -> None:
    docs = render(*KEY, "--set", "ledger.checkpoints.every=50")
    containers = _containers(docs)
    webhook, operator = containers["webhook"], containers["operator"]
    assert {k: v for k, v in _env(webhook).items() if k in CHECKPOINT_ENV} == {
        "AFFIDAVIT_LEDGER_KEY": "/var/run/affidavit/ledger-key/ledger.key",
        "AFFIDAVIT_CHECKPOINT_DIR": "/var/lib/affidavit/checkpoints",
        "AFFIDAVIT_CHECKPOINT_EVERY": "50",
        "AFFIDAVIT_CHECKPOINT_INTERVAL": "60",
        "AFFIDAVIT_CHECKPOINT_CONFIGMAP": "affidavit-system/affidavit-ledger-checkpoints",
    }
    assert {
        "name": "ledger-key",
        "mountPath": "/var/run/affidavit/ledger-key",
        "readOnly": True,
    } in (webhook["volumeMounts"])
    # The checkpoint directory is on the ledger's volume (the data mount).
    data = [m for m in webhook["volumeMounts"] if m["name"] == "data"]
    assert data == [{"name": "data", "mountPath": "/var/lib/affidavit"}]
    assert not CHECKPOINT_ENV & set(_env(operator))
    assert "ledger-key" not in {m["name"] for m in operator["volumeMounts"]}
    volumes = _one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == "ledger-key"]
    assert volume == {
        "name": "ledger-key",
        "secret": {
            "secretName": "affidavit-ledger-key",
            "defaultMode": 0o440,
            "items": [{"key": "ledger.key", "path": "ledger.key"}],
        },
    }
    text = _notes(helm, control_plane, *KEY)
    assert (
        "  kubectl -n affidavit-system get configmap affidavit-ledger-checkpoints -o yaml > "
        "checkpoints.yaml\n"
        "  affidavit decisions verify-chain --ledger URL --ledger-public-key affidavit-ledger.pub "
        "--checkpoints checkpoints.yaml"
    ) in text
    assert "is not signed" not in text


def test_the_role_names_the_checkpoint_configmap_and_nothing_else(render: Render) -> None:
    assert _checkpoint_rules(render(*KEY)) == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["affidavit-ledger-checkpoints"],
            "verbs": ["get", "update", "patch"],
        }
    ]
    named = render(*KEY, "--set", "ledger.checkpoints.configMap.name=audit-checkpoints")
    (rule,) = [r for r in _one(named, "Role")["rules"] if "audit-checkpoints" in str(r)]
    assert rule["resourceNames"] == ["audit-checkpoints"]
    assert _env(_containers(named)["webhook"])["AFFIDAVIT_CHECKPOINT_CONFIGMAP"] == (
        "affidavit-system/audit-checkpoints"
    )
    off = render(*KEY, "--set", "ledger.checkpoints.configMap.enabled=false")
    assert _checkpoint_rules(off) == []
    env = _env(_containers(off)["webhook"])
    assert "AFFIDAVIT_CHECKPOINT_CONFIGMAP" not in env
    assert env["AFFIDAVIT_CHECKPOINT_DIR"] == "/var/lib/affidavit/checkpoints"


@pytest.mark.parametrize(
    ("sets", "where"),
    [
        ("ledger.checkpoints.every=0", "/ledger/checkpoints/every"),
        ("ledger.checkpoints.configMap.name=Not_A_Name", "/ledger/checkpoints/configMap/name"),
        ("ledger.signingKey.secretKey=", "/ledger/signingKey/secretKey"),
    ],
)
def test_the_schema_refuses_bad_checkpoint_values(helm: Path, sets: str, where: str) -> None:
    out = run_helm(helm, "template", "affidavit", CHART, *KUBE_VERSION_ARGS, *KEY, "--set", sets,
                   check=False)  # fmt: skip
    assert out.returncode != 0
    assert f"at '{where}'" in out.stderr


# --- on the real apiserver, as the chart's ServiceAccount --------------------------------------


def _sa_kubeconfig(cp: ControlPlaneInfo, helm: Path, namespace: str, workdir: Path) -> Path:
    """Apply the chart's ServiceAccount and RBAC (release ``namespace``, signing key set) and
    write a kubeconfig with a TokenRequest token of that ServiceAccount."""
    rendered = run_helm(
        helm, "template", namespace, CHART, "--namespace", namespace, *KUBE_VERSION_ARGS, *KEY,
        "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml",
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    (account,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    kube = api_client(cp.kubeconfig)  # the admin
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    rbac = client.RbacAuthorizationV1Api(kube)
    for d in docs:
        kind = d["kind"]
        if kind == "ServiceAccount":
            core.create_namespaced_service_account(namespace, d)
        elif kind == "ClusterRole":
            rbac.create_cluster_role(d)
        elif kind == "ClusterRoleBinding":
            rbac.create_cluster_role_binding(d)
        elif kind == "Role":
            rbac.create_namespaced_role(namespace, d)
        elif kind == "RoleBinding":
            rbac.create_namespaced_role_binding(namespace, d)
    status = core.create_namespaced_service_account_token(
        account, namespace, client.AuthenticationV1TokenRequest(spec={"audiences": []})
    ).status
    assert status is not None
    token = status.token
    admin = yaml.safe_load(cp.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": cluster["name"], "user": account}}],
        "current-context": account,
    }
    path = workdir / "webhook.kubeconfig"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    return path


def _status(call: Any) -> int:
    try:
        call()
    except ApiException as e:
        return int(e.status)
    return 200


def test_the_service_account_writes_its_checkpoint_configmap_and_no_other(
    helm: Path, control_plane: ControlPlaneInfo, tmp_path: Path
) -> None:
    namespace = "affidavit-ckpt-rbac"
    admin = client.CoreV1Api(api_client(control_plane.kubeconfig))
    rbac = client.RbacAuthorizationV1Api(api_client(control_plane.kubeconfig))
    try:
        webhook_api = api_client(_sa_kubeconfig(control_plane, helm, namespace, tmp_path))
        as_webhook = client.CoreV1Api(webhook_api)
        name = f"{namespace}-ledger-checkpoints"
        trail = ConfigMapTrail(webhook_api, namespace, name, keep=2)
        for size in (1, 2, 3):  # creates it, then patches it (and prunes to the newest two)
            trail.publish(size, f"note {size}\n")
        stored = admin.read_namespaced_config_map(name, namespace)
        assert stored.data == {
            "checkpoint.0000000000000002": "note 2\n",
            "checkpoint.0000000000000003": "note 3\n",
        }
        admin.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="someone-else"))
        )
        patch = {"data": {"checkpoint.0000000000000009": "forged"}}
        assert (
            _status(lambda: as_webhook.patch_namespaced_config_map(name, namespace, patch)) == 200
        )
        for other in ("someone-else", "kube-root-ca.crt"):
            assert (
                _status(lambda o=other: as_webhook.patch_namespaced_config_map(o, namespace, patch))
                == 403
            )
        assert (
            _status(lambda: as_webhook.patch_namespaced_config_map(name, "default", patch)) == 403
        )
        elsewhere = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name))
        assert _status(lambda: as_webhook.create_namespaced_config_map("default", elsewhere)) == 403
    finally:
        admin.delete_namespace(namespace)
        for delete in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
            _status(lambda d=delete: d(namespace))
