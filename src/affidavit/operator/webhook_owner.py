"""The webhook configurations as installed: who owns them, and whether they were edited since.

Both webhook configurations are cluster-scoped and fail closed, and point at a Service in
Affidavit's namespace. Deleting that namespace (``kubectl delete ns``, a GitOps prune, an
uninstall that stops half-way) takes the Service, the Pods and Helm's release record with it and
leaves the configurations behind: every Pod create or update outside kube-system refused, with
nothing left to answer. That is failing closed, and it stays the default: the right to delete a
namespace is not the right to delete webhook configurations (a GitOps pruner or a namespace
provisioner often has the first only), so tying them to the namespace would hand whoever holds
the first a way to switch enforcement off cluster-wide. NOTES say how to recover.

Where a cluster prefers the other way (``--own-webhook-configurations``, the chart's
``webhook.removeWithNamespace``), the operator makes the namespace an owner of both
configurations (a cluster-scoped object may be owned by another cluster-scoped one), and the
garbage collector removes them with it. The reference blocks nothing (``blockOwnerDeletion`` is
unset), a Helm upgrade leaves it (the chart does not write the field), and it is checked at
every start and every resync, so a configuration written again (a re-install) is owned again.

At the same time the operator compares each webhook's live ``failurePolicy`` with the one the
chart installed (``--webhook-failure-policy``). A ``kubectl edit`` to ``Ignore`` makes every
workload pass unjudged, unpinned and unrecorded whenever the webhook cannot be reached, and
nothing of the webhook's own would say so: the operator logs it and exports
``affidavit_webhook_configuration_drift`` (1 while any webhook differs), which the chart's
alert reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
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


def _calls(k: kube.Kube, kind: str) -> tuple[Any, Any]:
    api = k.admission
    if kind == "validating":
        return (
            api.read_validating_webhook_configuration,
            api.patch_validating_webhook_configuration,
        )
    return api.read_mutating_webhook_configuration, api.patch_mutating_webhook_configuration


def _read(k: kube.Kube, kind: str, name: str) -> Any | None:
    read, _ = _calls(k, kind)
    try:
        return kube.call(f"get {kind}webhookconfiguration {name}", lambda: read(name))
    except ClusterError as e:
        if kube.is_not_found(e):
            return None
        raise


def _own(k: kube.Kube, kind: str, name: str, reference: dict[str, Any]) -> bool:
    _, write = _calls(k, kind)
    current = _read(k, kind, name)
    if current is None:
        return False
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
    # a JSON merge patch replaces the list (a strategic one merges it by uid: the stale
    # reference would stay)
    kube.call(
        f"patch {kind}webhookconfiguration {name}",
        lambda: write(name, patch, _content_type="application/merge-patch+json"),
    )
    log.info(
        "%swebhookconfiguration %s is owned by namespace %s: it goes when the namespace does",
        kind,
        name,
        reference["name"],
    )
    return True


def failure_policy_drift(k: kube.Kube, configuration: str, expected: str) -> list[str]:
    """One line for each webhook of this release's configurations whose live failurePolicy is
    not ``expected`` (the chart's ``webhook.failurePolicy``)."""
    found = []
    for kind in KINDS:
        current = _read(k, kind, configuration)
        for webhook in (current.webhooks or []) if current is not None else []:
            live = webhook.failure_policy or "Fail"  # the API server's default
            if live != expected:
                found.append(
                    f"{kind}webhookconfiguration {configuration}, webhook {webhook.name}:"
                    f" failurePolicy {live}, installed as {expected}"
                )
    return found


@dataclass
class Drift:
    """The last drift found; logged when it changes, exported as a gauge."""

    found: list[str] = field(default_factory=list)

    def update(self, found: list[str]) -> None:
        if found == self.found:
            return
        self.found = found
        if found:
            log.warning(
                "webhook configuration edited since it was installed (%s): workloads pass "
                "unjudged and unrecorded whenever the webhook cannot be reached; restore it "
                "with helm upgrade --reuse-values",
                "; ".join(found),
            )
        else:
            log.info("webhook configurations are as installed again")

    def render(self) -> bytes:
        return (
            b"# HELP affidavit_webhook_configuration_drift Whether a webhook's failurePolicy "
            b"differs from the one installed (1; the operator's log names it).\n"
            b"# TYPE affidavit_webhook_configuration_drift gauge\n"
            b"affidavit_webhook_configuration_drift " + (b"1.0" if self.found else b"0.0") + b"\n"
        )
