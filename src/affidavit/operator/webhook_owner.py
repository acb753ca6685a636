"""The webhook configurations go when Affidavit's namespace goes.

Both webhook configurations are cluster-scoped and fail closed, and point at a Service in
Affidavit's namespace. Deleting that namespace (``kubectl delete ns``, a GitOps prune, an
uninstall that stops half-way) took the Service, the Pods and Helm's release record with it and
left the configurations behind: every Pod create or update outside kube-system refused, with
nothing left to answer and nothing left for ``helm uninstall`` to clean up.

So the operator makes the namespace an owner of both configurations (a cluster-scoped object
may be owned by another cluster-scoped one): when the namespace is gone, the API server's
garbage collector removes them. Whoever can delete a namespace, a cluster-scoped object, can
delete the configurations too; nothing is handed to anyone who could not already switch
enforcement off. The reference blocks nothing (``blockOwnerDeletion`` is unset), and a Helm
upgrade leaves it (the chart does not write the field). It is checked at every start and every
resync, so a configuration written again (a re-install) is owned again.
"""

from __future__ import annotations

import logging
from typing import Any

from affidavit.errors import ClusterError
from affidavit.operator import kube

log = logging.getLogger(__name__)

KINDS = ("validating", "mutating")


def owner_reference(namespace: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": uid}


def own(k: kube.Kube, configuration: str, namespace: str) -> list[str]:
    """Make ``namespace`` an owner of this release's webhook configurations named
    ``configuration``; the kinds now owned (absent ones are skipped)."""
    uid = kube.call(f"get namespace {namespace}", lambda: k.core.read_namespace(namespace))
    reference = owner_reference(namespace, uid.metadata.uid)
    owned = []
    for kind in KINDS:
        if _own(k, kind, configuration, reference):
            owned.append(kind)
    return owned


def _own(k: kube.Kube, kind: str, name: str, reference: dict[str, Any]) -> bool:
    api = k.admission
    if kind == "validating":
        read, write = (
            api.read_validating_webhook_configuration,
            api.patch_validating_webhook_configuration,
        )
    else:
        read, write = (
            api.read_mutating_webhook_configuration,
            api.patch_mutating_webhook_configuration,
        )
    try:
        current = kube.call(f"get {kind}webhookconfiguration {name}", lambda: read(name))
    except ClusterError as e:
        if kube.is_not_found(e):
            return False
        raise
    existing = [
        {"apiVersion": r.api_version, "kind": r.kind, "name": r.name, "uid": r.uid}
        for r in current.metadata.owner_references or []
    ]
    if reference in existing:
        return True
    # a namespace of the same name deleted and made again has another uid: its reference goes
    kept = [
        r for r in existing if not (r["kind"] == "Namespace" and r["name"] == reference["name"])
    ]
    patch = {
        "metadata": {
            "ownerReferences": [*kept, reference],
            "resourceVersion": current.metadata.resource_version,
        }
    }
    kube.call(f"patch {kind}webhookconfiguration {name}", lambda: write(name, patch))
    log.info(
        "%swebhookconfiguration %s is owned by namespace %s: it goes when the namespace does",
        kind,
        name,
        reference["name"],
    )
    return True
