"""The operator on a real kube-apiserver: policies compile into the published index, status
reports Ready or the validation error, edits republish, and exceptions expire on time."""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
from collections.abc import Callable
from typing import Any

import yaml
from operator_support import CRDS, NAMESPACE, RunningOperator, get_json

from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.operator import kube
from affidavit.operator.handlers import Reconciler

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def apply(kubectl: Kubectl, obj: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def published_index(kubectl: Kubectl) -> tuple[dict[str, Any], str]:
    cm = get_json(kubectl, "configmap", "affidavit-policy-index", "-n", NAMESPACE)
    text = cm["data"]["index.json"]
    assert cm["metadata"]["annotations"]["affidavit.dev/index-digest"] == (
        "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    )
    return json.loads(text), cm["metadata"]["annotations"]["affidavit.dev/index-digest"]


def ready(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if not obj:
        return None
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready":
            return c
    return None


def policy(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "affidavit.dev/v1alpha1",
        "kind": "AccountabilityPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_valid_policy_is_published_and_ready(operator: RunningOperator, kubectl: Kubectl) -> None:
    apply(
        kubectl,
        policy(
            "e2e-baseline",
            mode="Enforce",
            match={"images": ["registry.example/*"], "regions": ["eu-*"]},
            require={
                "provenance": {"required": True, "maxAgeDays": 30},
                "tiers": {"critical": {"independentApprovals": 2, "securityReview": True}},
                "consistentRevision": True,
            },
            jurisdictions=["soc2"],
            groups={"security": ["sam"]},  # securityReview needs it, else Ready False
        ),
    )

    def status() -> dict[str, Any] | None:
        obj = get_json(kubectl, "accountabilitypolicy", "e2e-baseline")
        c = ready(obj)
        return obj if c and c["status"] == "True" else None

    obj = wait_for(status, "e2e-baseline to be Ready")
    st = obj["status"]
    assert st["observedGeneration"] == obj["metadata"]["generation"] == 1
    assert ready(obj) == {
        "type": "Ready",
        "status": "True",
        "reason": "Compiled",
        "message": "compiled into the policy index",
        "observedGeneration": 1,
        "lastTransitionTime": ready(obj)["lastTransitionTime"],  # type: ignore[index]
    }
    assert st["compiled"] == {
        "mode": "Enforce",
        "jurisdictions": ["soc2"],
        "rules": [
            "provenance required (at most 30 days old)",
            "tier critical (AI-touched changes): 2 independent approvals, security review",
            "one source revision across attestations",
            "keyless statements name the source their certificate names",
            "approvals recorded by a review platform, not commit trailers",
            "the reviewed change request holds the commits needing review",
        ],
        "appliesToThisCluster": True,  # region eu-west-1 matches eu-*
    }
    index, _ = wait_for(
        lambda: (
            (i := published_index(kubectl))
            and any(p["name"] == "e2e-baseline" for p in i[0]["policies"])
            and i
        ),
        "the index to hold e2e-baseline",
    )
    (entry,) = [p for p in index["policies"] if p["name"] == "e2e-baseline"]
    assert entry["generation"] == 1
    assert entry["spec"]["require"]["tiers"]["critical"]["independentApprovals"] == 2


def test_edit_republishes_and_bumps_observed_generation(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    apply(kubectl, policy("e2e-edit", mode="Warn", match={"clusters": ["other-*"]}))
    wait_for(lambda: ready(get_json(kubectl, "accountabilitypolicy", "e2e-edit")), "e2e-edit")
    _, before = published_index(kubectl)
    obj = get_json(kubectl, "accountabilitypolicy", "e2e-edit")
    assert obj["status"]["compiled"]["appliesToThisCluster"] is False  # cluster is e2e-cluster

    kubectl("patch", "accountabilitypolicy", "e2e-edit", "--type=merge",
            "-p", json.dumps({"spec": {"mode": "Enforce"}}))  # fmt: skip

    def edited() -> dict[str, Any] | None:
        o = get_json(kubectl, "accountabilitypolicy", "e2e-edit")
        return o if o["status"].get("observedGeneration") == 2 else None

    obj = wait_for(edited, "observedGeneration 2")
    assert obj["status"]["compiled"]["mode"] == "Enforce"
    index, after = published_index(kubectl)
    assert after != before
    (entry,) = [p for p in index["policies"] if p["name"] == "e2e-edit"]
    assert (entry["generation"], entry["spec"]["mode"]) == (2, "Enforce")

    kubectl("delete", "accountabilitypolicy", "e2e-edit")
    wait_for(
        lambda: all(p["name"] != "e2e-edit" for p in published_index(kubectl)[0]["policies"]),
        "the deleted policy to leave the index",
    )


def older_crd_without_tier_rules() -> str:
    """The chart's AccountabilityPolicy CRD minus the CEL rules on tiers.

    Helm never upgrades CRDs, so clusters keep CRDs of earlier chart versions whose schema
    lacked rules the engine enforces; objects stored under them reach the operator.
    """
    crd = yaml.safe_load((CRDS / "accountabilitypolicies.affidavit.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    tiers = schema["properties"]["spec"]["properties"]["require"]["properties"]["tiers"]
    tiers["additionalProperties"].pop("x-kubernetes-validations", None)
    return json.dumps(crd)


def test_invalid_policy_reports_the_validation_error(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    kubectl("apply", "-f", "-", input=older_crd_without_tier_rules())
    try:
        apply(
            kubectl,
            policy(
                "e2e-inconsistent",
                require={"tiers": {"critical": {"approvals": 1, "independentApprovals": 2}}},
            ),
        )
    finally:
        kubectl("apply", "--server-side", "--force-conflicts", "-f",
                CRDS / "accountabilitypolicies.affidavit.dev.yaml")  # fmt: skip

    def invalid() -> dict[str, Any] | None:
        c = ready(get_json(kubectl, "accountabilitypolicy", "e2e-inconsistent"))
        return c if c and c["status"] == "False" else None

    c = wait_for(invalid, "e2e-inconsistent to be reported invalid")
    expected = (
        "spec.require.tiers.critical: Value error, independentApprovals cannot exceed approvals "
        "(independent approvals are approvals); leave approvals at 0 to require only "
        "independent ones"
    )
    assert (c["reason"], c["message"], c["observedGeneration"]) == ("Invalid", expected, 1)
    obj = get_json(kubectl, "accountabilitypolicy", "e2e-inconsistent")
    assert "compiled" not in obj["status"]
    index, _ = published_index(kubectl)
    assert all(p["name"] != "e2e-inconsistent" for p in index["policies"])
    assert index["errors"]["AccountabilityPolicy/e2e-inconsistent"] == expected

    # fixing the object makes it Ready and brings it into the index
    kubectl("patch", "accountabilitypolicy", "e2e-inconsistent", "--type=merge", "-p",
            json.dumps({"spec": {"require": {"tiers": {"critical": {"approvals": 2}}}}}))  # fmt: skip

    def fixed() -> dict[str, Any] | None:
        c = ready(get_json(kubectl, "accountabilitypolicy", "e2e-inconsistent"))
        return c if c and c["status"] == "True" and c["observedGeneration"] == 2 else None

    wait_for(fixed, "e2e-inconsistent to become Ready after the fix")
    index, _ = published_index(kubectl)
    assert "AccountabilityPolicy/e2e-inconsistent" not in index["errors"]
    assert any(p["name"] == "e2e-inconsistent" for p in index["policies"])
    kubectl("delete", "accountabilitypolicy", "e2e-inconsistent")


def newer_crd_with_a_field() -> str:
    """The chart's AccountabilityPolicy CRD plus a field of a later version's
    (``spec.require.futureRule``): what a cluster keeps after ``helm rollback``, since Helm
    never downgrades ``crds/``."""
    crd = yaml.safe_load((CRDS / "accountabilitypolicies.affidavit.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    require = schema["properties"]["spec"]["properties"]["require"]["properties"]
    require["futureRule"] = {"type": "object", "properties": {"on": {"type": "boolean"}}}
    return json.dumps(crd)


def test_a_field_of_newer_crds_leaves_the_policy_in_force_without_it(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    """After an upgrade a policy adopts a new field; after `helm rollback` the older operator
    refused the whole policy as unknown, and (reading the index the newer one had published
    no better) left it out: its images matched no policy, which the default
    unmatchedImages: Warn admits. The API server prunes what its CRDs do not declare, so an
    unknown field here can only be a newer one's: the rest of the policy stays in force."""
    name = "e2e-from-the-future"
    kubectl("apply", "-f", "-", input=newer_crd_with_a_field())
    try:
        apply(
            kubectl,
            policy(
                name,
                mode="Enforce",
                match={"images": ["registry.example/future/*"]},
                require={"provenance": {"required": True}, "futureRule": {"on": True}},
            ),
        )

        def noted() -> dict[str, Any] | None:
            c = ready(get_json(kubectl, "accountabilitypolicy", name))
            return c if c and c["status"] == "False" and c["observedGeneration"] == 1 else None

        c = wait_for(noted, f"{name}'s status to name the field")
        assert c["reason"] == "FieldsLeftOut"
        assert c["message"].startswith(
            "compiled and enforced, but spec.require.futureRule: a field this version of"
        )
        obj = get_json(kubectl, "accountabilitypolicy", name)
        assert obj["status"]["compiled"] is not None  # in force, and said to be
        index, _ = published_index(kubectl)
        kept = next(p for p in index["policies"] if p["name"] == name)
        assert kept["spec"]["require"]["provenance"] == {"required": True}
        assert "futureRule" not in kept["spec"]["require"]
    finally:
        kubectl("delete", "accountabilitypolicy", name, "--ignore-not-found")
        kubectl("apply", "--server-side", "--force-conflicts", "-f",
                CRDS / "accountabilitypolicies.affidavit.dev.yaml")  # fmt: skip


def test_exception_expires_and_leaves_the_index(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    def stamp_in(seconds: int) -> str:
        at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")

    # Active is checked with an hour to go, so that a slow machine cannot see it expire first;
    # then expiresAt is moved to a few seconds from now, and the operator's timer must follow.
    far = stamp_in(3600)
    apply(
        kubectl,
        {
            "apiVersion": "affidavit.dev/v1alpha1",
            "kind": "AccountabilityException",
            "metadata": {"name": "break-glass", "namespace": NAMESPACE},
            "spec": {
                "workloads": [{"kind": "Deployment", "name": "checkout"}],
                "reason": "payment outage hotfix",
                "incidentId": "INC-42",
                "owner": "alice",
                "approvers": ["bob"],
                "expiresAt": far,
            },
        },
    )

    def phase(p: str) -> dict[str, Any] | None:
        obj = get_json(kubectl, "accountabilityexception", "break-glass", "-n", NAMESPACE)
        return obj if obj and (obj.get("status") or {}).get("phase") == p else None

    active = wait_for(lambda: phase("Active"), "break-glass to be Active", timeout=60)
    assert ready(active)["message"] == f"active until {far}"  # type: ignore[index]
    assert any(e["name"] == "break-glass" for e in published_index(kubectl)[0]["exceptions"])

    stamp = stamp_in(3)
    patch = json.dumps({"spec": {"expiresAt": stamp}})
    kubectl("patch", "accountabilityexception", "break-glass", "-n", NAMESPACE,
            "--type=merge", "-p", patch)  # fmt: skip
    expired = wait_for(lambda: phase("Expired"), "break-glass to expire", timeout=60)
    c = ready(expired)
    assert c is not None
    assert (c["status"], c["reason"]) == ("False", "Expired")
    assert c["message"] == f"expired at {stamp}; it no longer admits workloads"
    assert all(e["name"] != "break-glass" for e in published_index(kubectl)[0]["exceptions"])


def test_an_edit_that_breaks_a_policy_in_force_leaves_its_last_valid_spec_in_force(
    operator: RunningOperator, control_plane: ControlPlaneInfo, kubectl: Kubectl
) -> None:
    """The schema lets through what the model refuses (a keyless signer with both subject and
    subjectRegExp). Left out of the index, the policy's images would match nothing, which the
    default unmatchedImages: Warn admits: one bad edit would switch enforcement off."""
    name = "e2e-in-force"
    keyless = {"name": "ci", "issuer": "https://token.actions.githubusercontent.com"}
    apply(
        kubectl,
        policy(
            name,
            mode="Enforce",
            match={"images": ["registry.example/in-force/*"]},
            signers={"keyless": [keyless | {"subject": "ci@example.com"}]},
            require={"provenance": {"required": True}},
        ),
    )

    def in_index() -> dict[str, Any] | None:
        index, _ = published_index(kubectl)
        return next((p for p in index["policies"] if p["name"] == name), None)

    wait_for(in_index, f"{name} to be published")
    broken = {"signers": {"keyless": [keyless | {"subject": "ci@example.com",
                                                 "subjectRegExp": ".*"}]}}  # fmt: skip
    kubectl("patch", "accountabilitypolicy", name, "--type=merge", "-p",
            json.dumps({"spec": broken}))  # fmt: skip

    def invalid() -> dict[str, Any] | None:
        c = ready(get_json(kubectl, "accountabilitypolicy", name))
        return c if c and c["status"] == "False" and c["observedGeneration"] == 2 else None

    c = wait_for(invalid, f"{name} to be reported invalid")
    assert c["reason"] == "Invalid"
    assert "give exactly one of subject and subjectRegExp" in c["message"]
    assert c["message"].endswith(
        "; generation 1, its last valid spec, stays in force until this is fixed"
    )
    index, digest = published_index(kubectl)
    kept = next(p for p in index["policies"] if p["name"] == name)
    assert kept["generation"] == 1
    assert kept["spec"]["signers"]["keyless"][0] == keyless | {"subject": "ci@example.com"}
    assert index["errors"][f"AccountabilityPolicy/{name}"] == c["message"]

    # An operator started afresh (a restart, a new leader) reads the index in force from the
    # ConfigMap and keeps the same version, so it publishes nothing new.
    fresh = kube.connect(control_plane.kubeconfig)
    try:
        reconciler = Reconciler(api=fresh, namespace=NAMESPACE)
        assert reconciler.in_force() is not None
        reconciler.reconcile_once()
        assert reconciler.snapshot.index is not None
        assert reconciler.snapshot.index.digest == digest
    finally:
        fresh.close()

    # Deleting it takes it out of force; it is not resurrected from the index.
    kubectl("delete", "accountabilitypolicy", name)
    wait_for(lambda: in_index() is None, f"{name} to leave the index")


def test_a_replica_that_loses_the_lease_while_building_does_not_publish(
    control_plane: ControlPlaneInfo, kubectl: Kubectl, crds: None
) -> None:
    """Leadership is asked again right before the write: a replica paused between building
    its index and writing it (the Lease lapsed meanwhile, another took over) wrote an older
    index over the new leader's, which stood until the next change or resync."""
    namespace = "affidavit-stale-leader"
    kubectl("create", "namespace", namespace, check=False)
    fresh = kube.connect(control_plane.kubeconfig)
    try:
        reconciler = Reconciler(api=fresh, namespace=namespace)
        answers = iter([True, False])  # a leader when it starts, no longer when it writes
        reconciler.is_leader = lambda: next(answers, False)
        reconciler.reconcile_once()
        assert reconciler.snapshot.index is not None  # built, for this replica's own use
        assert kube.read_configmap(fresh, namespace, "affidavit-policy-index") is None
        reconciler.is_leader = lambda: True
        reconciler.reconcile_once()
        assert kube.read_configmap(fresh, namespace, "affidavit-policy-index") is not None
    finally:
        fresh.close()
        kubectl("delete", "namespace", namespace, "--wait=false")
