"""The webhook's identity as the Helm chart grants it: its ServiceAccount and RBAC, not the admin.

The stack runs the webhook with the control plane's admin kubeconfig (``system:masters``), on
which every read succeeds, so a test of something the webhook reads from the API server would
pass even when the chart forgets to grant it. This renders the chart's ServiceAccount and RBAC
with ``helm template`` for a release named after the stack's namespace, applies them, asks the
TokenRequest API for a token of that ServiceAccount, and writes a kubeconfig for it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from affidavit.envtest import ControlPlaneInfo, pinned_versions

CHART = Path(__file__).resolve().parents[3] / "charts" / "affidavit"


def _run(argv: list[str], *, input: str | None = None) -> str:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def chart_webhook_kubeconfig(
    cp: ControlPlaneInfo, namespace: str, workdir: Path, *values: str
) -> Path:
    """A kubeconfig for the chart's ServiceAccount of release ``namespace`` in ``namespace``,
    its RBAC rendered with the chart's defaults and ``values`` (``KEY=VALUE``, as ``--set``)."""
    kubectl = [str(cp.kubectl), f"--kubeconfig={cp.kubeconfig}"]
    rendered = _run(
        [
            str(cp.helm), "template", namespace, str(CHART),
            "--namespace", namespace,
            "--kube-version", pinned_versions()["K8S_VERSION"],
            "--show-only", "templates/serviceaccount.yaml",
            "--show-only", "templates/rbac.yaml",
            *(arg for value in values for arg in ("--set", value)),
        ]
    )  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    (account,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    subprocess.run([*kubectl, "create", "namespace", namespace], capture_output=True, check=False)
    _run([*kubectl, "apply", "-f", "-"], input=json.dumps({"kind": "List", "apiVersion": "v1",
                                                           "items": docs}))  # fmt: skip
    token = _run([*kubectl, "create", "token", account, "-n", namespace, "--duration=4h"]).strip()
    admin = yaml.safe_load(cp.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [
            {"name": account, "context": {"cluster": admin["clusters"][0]["name"], "user": account}}
        ],
        "current-context": account,
    }
    path = workdir / f"{namespace}-webhook.kubeconfig"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    return path


def delete_chart_rbac(cp: ControlPlaneInfo, namespace: str) -> None:
    """The cluster-scoped half (ClusterRole and binding) outlives the namespace: delete it."""
    kubectl = [str(cp.kubectl), f"--kubeconfig={cp.kubeconfig}"]
    for kind in ("clusterrolebinding", "clusterrole"):
        subprocess.run(
            [*kubectl, "delete", kind, namespace, "--ignore-not-found"],
            capture_output=True,
            check=False,
        )
