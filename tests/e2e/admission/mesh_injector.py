"""A service mesh's sidecar injector, as far as admission sees one: a stand-in for Istio's.

No mesh can be installed here (its images and charts come from outside), but what one does to
admission is small and exact: a mutating webhook that adds a proxy container to every Pod the
API server creates with an opt-in label, scale-ups and restarts included. This module runs such
a webhook for real: an HTTPS server on loopback with its own CA, registered with the API server
by a MutatingWebhookConfiguration, answering with a JSON Patch. The API server calls it before
Affidavit's pinning webhook (which it re-invokes after, ``reinvocationPolicy: IfNeeded``) and
before the validating webhook, as it would call Istio's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from affidavit.demo.stack import ClusterStack
from affidavit.envtest import wait_for
from loopback_webhooks import LoopbackWebhook, loopback_webhook

#: The label a Pod (template) carries to get the proxy, as Istio's ``sidecar.istio.io/inject``.
INJECT_LABEL = "mesh.example/inject"
PROXY_CONTAINER = "mesh-proxy"


def _injector(proxy_image: str) -> Any:
    def inject(request: dict[str, Any]) -> dict[str, Any]:
        containers = request["object"].get("spec", {}).get("containers", [])
        if any(c.get("name") == PROXY_CONTAINER for c in containers):
            return {"allowed": True}
        proxy = {"name": PROXY_CONTAINER, "image": proxy_image, "args": ["proxy", "sidecar"]}
        return {
            "allowed": True,
            "patch": [{"op": "add", "path": "/spec/containers/-", "value": proxy}],
        }

    return inject


def _injects(stack: ClusterStack, namespace: str, proxy_image: str) -> bool:
    """Whether the API server calls the injector yet (its configuration is read in the
    background): a labelled Pod created as a dry run comes back with the proxy."""
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "mesh-probe",
            "namespace": namespace,
            "labels": {INJECT_LABEL: "true"},
        },
        "spec": {"containers": [{"name": "probe", "image": proxy_image}]},
    }
    proc = stack.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(probe), check=False
    )
    if proc.returncode != 0:
        return False
    containers = json.loads(proc.stdout)["spec"]["containers"]
    return any(c["name"] == PROXY_CONTAINER for c in containers)


@contextmanager
def mesh_injector(
    stack: ClusterStack, namespace: str, proxy_image: str, workdir: Path
) -> Iterator[list[dict[str, Any]]]:
    """Inject ``proxy_image`` into labelled Pods of ``namespace`` while in the block; yields the
    reviews the API server sent it (the injector was really called)."""
    with loopback_webhook(_injector(proxy_image), workdir, "mesh-injector") as server:
        yield from _registered(stack, namespace, proxy_image, server)


def _registered(
    stack: ClusterStack, namespace: str, proxy_image: str, server: LoopbackWebhook
) -> Iterator[list[dict[str, Any]]]:
    name = f"mesh-injector-{namespace}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "inject.mesh.example",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
                "clientConfig": server.client_config(),
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "objectSelector": {"matchLabels": {INJECT_LABEL: "true"}},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
            }
        ],
    }
    try:
        stack.apply(config)
        wait_for(lambda: _injects(stack, namespace, proxy_image), "the injector to be called")
        yield server.reviews
    finally:
        stack.kubectl("delete", "mutatingwebhookconfiguration", name, "--ignore-not-found")
