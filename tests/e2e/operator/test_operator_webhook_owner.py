"""The webhook configurations as installed, on a real control plane (its garbage collector and
namespace controller, kube-controller-manager's).

With ``webhook.removeWithNamespace`` the operator makes Affidavit's namespace their owner, so
deleting the namespace removes them instead of leaving them failing closed on every Pod (off by
default: see ``affidavit.operator.webhook_owner``). Whatever that setting, a failurePolicy
edited since install is found."""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any

import pytest
from operator_support import Kubectl, get_json

from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.operator import kube, webhook_owner

_n = itertools.count()


def _configuration(kind: str, name: str, namespace: str) -> dict[str, Any]:
    """A fail-closed configuration like the chart's, which matches nothing here (a namespace
    label nobody sets), pointing at a Service in ``namespace``."""
    webhook = {
        "name": "workloads.affidavit.dev",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "clientConfig": {"service": {"name": "affidavit", "namespace": namespace}},
        "namespaceSelector": {"matchLabels": {"affidavit-e2e": "never"}},
        "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                   "resources": ["pods"]}],
    }  # fmt: skip
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": f"{kind.capitalize()}WebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [webhook],
    }


def _owners(kubectl: Kubectl, kind: str, name: str) -> list[dict[str, Any]] | None:
    found = get_json(kubectl, f"{kind}webhookconfiguration", name)
    return None if not found else found["metadata"].get("ownerReferences", [])


def test_deleting_the_namespace_removes_both_configurations(
    control_plane: ControlPlaneInfo, kubectl: Kubectl
) -> None:
    n = next(_n)
    namespace, name = f"affidavit-owned-{n}", f"affidavit-owned-{n}"
    kubectl("create", "namespace", namespace)
    for kind in webhook_owner.KINDS:
        kubectl("apply", "-f", "-", input=json.dumps(_configuration(kind, name, namespace)))
    client = kube.connect(control_plane.kubeconfig)
    try:
        assert webhook_owner.own(client, name, namespace) == ["validating", "mutating"]
        uid = get_json(kubectl, "namespace", namespace)["metadata"]["uid"]
        expected = [{"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": uid}]
        for kind in webhook_owner.KINDS:
            assert _owners(kubectl, kind, name) == expected
        # again: nothing to change, and the configurations keep one reference each
        assert webhook_owner.own(client, name, namespace) == ["validating", "mutating"]
        assert _owners(kubectl, "validating", name) == expected
        # a configuration absent (never installed, or removed by hand) is skipped
        assert webhook_owner.own(client, "affidavit-absent", namespace) == []
    finally:
        client.close()
    kubectl("delete", "namespace", namespace, "--wait=false")
    wait_for(
        lambda: all(_owners(kubectl, kind, name) is None for kind in webhook_owner.KINDS),
        "the garbage collector to remove both configurations with their namespace",
        timeout=120,
        interval=1,
    )


def test_a_reference_to_an_earlier_namespace_of_that_name_is_replaced(
    control_plane: ControlPlaneInfo, kubectl: Kubectl
) -> None:
    # a namespace deleted and made again has another uid; other owners are kept (one that
    # exists here, so the garbage collector keeps the configuration meanwhile)
    n = next(_n)
    namespace, name = f"affidavit-owned-{n}", f"affidavit-owned-{n}"
    kubectl("create", "namespace", namespace)
    public = get_json(kubectl, "namespace", "kube-public")["metadata"]["uid"]
    other = {"apiVersion": "v1", "kind": "Namespace", "name": "kube-public", "uid": public}
    stale = {"apiVersion": "v1", "kind": "Namespace", "name": namespace,
             "uid": "00000000-0000-0000-0000-000000000000"}  # fmt: skip
    configuration = _configuration("validating", name, namespace)
    configuration["metadata"]["ownerReferences"] = [other, stale]
    kubectl("apply", "-f", "-", input=json.dumps(configuration))
    client = kube.connect(control_plane.kubeconfig)
    try:
        assert webhook_owner.own(client, name, namespace) == ["validating"]
        uid = get_json(kubectl, "namespace", namespace)["metadata"]["uid"]
        fresh = {"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": uid}
        assert _owners(kubectl, "validating", name) == [other, fresh]
    finally:
        client.close()
        kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")
        kubectl("delete", "namespace", namespace, "--wait=false")


def test_a_failure_policy_edited_since_install_is_found(
    control_plane: ControlPlaneInfo, kubectl: Kubectl, caplog: pytest.LogCaptureFixture
) -> None:
    """`kubectl edit` to failurePolicy Ignore made every workload pass unjudged whenever the
    webhook could not be reached, and nothing of Affidavit's said so."""
    n = next(_n)
    name = f"affidavit-drift-{n}"
    for kind in webhook_owner.KINDS:
        kubectl("apply", "-f", "-", input=json.dumps(_configuration(kind, name, "nowhere")))
    client = kube.connect(control_plane.kubeconfig)
    drift = webhook_owner.Drift()
    try:
        assert webhook_owner.failure_policy_drift(client, name, "Fail") == []
        kubectl("patch", "mutatingwebhookconfiguration", name, "--type=json", "-p",
                json.dumps([{"op": "replace", "path": "/webhooks/0/failurePolicy",
                             "value": "Ignore"}]))  # fmt: skip
        found = webhook_owner.failure_policy_drift(client, name, "Fail")
        assert found == [
            f"mutatingwebhookconfiguration {name}, webhook workloads.affidavit.dev:"
            " failurePolicy Ignore, installed as Fail"
        ]
        with caplog.at_level(logging.WARNING, logger="affidavit.operator.webhook_owner"):
            drift.update(found)
        assert "webhook configuration edited since it was installed" in caplog.text
        assert drift.render().endswith(b"affidavit_webhook_configuration_drift 1.0\n")
        # restored (helm upgrade --reuse-values): the gauge goes back to 0
        kubectl("patch", "mutatingwebhookconfiguration", name, "--type=json", "-p",
                json.dumps([{"op": "replace", "path": "/webhooks/0/failurePolicy",
                             "value": "Fail"}]))  # fmt: skip
        drift.update(webhook_owner.failure_policy_drift(client, name, "Fail"))
        assert drift.render().endswith(b"affidavit_webhook_configuration_drift 0.0\n")
    finally:
        client.close()
        for kind in webhook_owner.KINDS:
            kubectl("delete", f"{kind}webhookconfiguration", name, "--ignore-not-found")
