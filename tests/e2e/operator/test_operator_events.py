"""Denials and warnings recorded in a real SQLite ledger become Kubernetes Events on the
workload (reason, message with the decision id), once each; allowed decisions make none."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from operator_support import Kubectl, RunningOperator, get_json, wait_for

from affidavit.ledger import Ledger
from affidavit.policy.decision import Decision, ImageRef, Violation

NS = "affidavit-events-e2e"


def decision(outcome: str, name: str, violations: tuple[Violation, ...] = ()) -> Decision:
    return Decision(
        id=str(uuid.uuid4()),
        time=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        cluster="e2e-cluster",
        region="eu-west-1",
        namespace=NS,
        kind="Deployment",
        name=name,
        operation="CREATE",
        user="alice",
        outcome=outcome,  # type: ignore[arg-type]
        mode="Enforce" if outcome == "denied" else "Warn",
        images=(ImageRef("registry.example/checkout:1.2", "sha256:" + "a" * 64),),
        violations=violations,
    )


MISSING_REVIEW = Violation(
    rule="review.critical.independentApprovals",
    policy="AccountabilityPolicy/baseline",
    found="0 independent approvals",
    expected="at least 2",
    fix="get two reviewers who are not the author to approve the change",
    image="registry.example/checkout:1.2",
)


def events_for(kubectl: Kubectl, name: str) -> list[dict[str, Any]]:
    doc = get_json(kubectl, "events", "-n", NS,
                   "--field-selector", f"involvedObject.name={name}")  # fmt: skip
    return list(doc["items"]) if doc else []


def test_denial_and_warning_become_events(operator: RunningOperator, kubectl: Kubectl) -> None:
    kubectl("create", "namespace", NS, check=False)
    ledger = Ledger(operator.ledger_url)
    denied = decision("denied", "checkout", (MISSING_REVIEW,))
    allowed = decision("allowed", "catalog")
    warned = decision("warned", "search", (MISSING_REVIEW,))
    for d in (denied, allowed, warned):
        ledger.append(d)

    (event,) = wait_for(lambda: events_for(kubectl, "checkout"), "the denial's Event")
    assert event["reason"] == "AffidavitDenied"
    assert event["type"] == "Warning"
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "checkout",
        "namespace": NS,
    }
    assert event["message"] == (
        f"Affidavit denied Deployment/checkout (decision {denied.id}): "
        f"{MISSING_REVIEW.message}; see `affidavit explain --decision {denied.id}`"
    )
    assert event["source"]["component"] == "affidavit"
    assert event["reportingComponent"] == "affidavit.dev/operator"

    (warning,) = wait_for(lambda: events_for(kubectl, "search"), "the warning's Event")
    assert warning["reason"] == "AffidavitWarned"
    assert warning["message"].startswith(
        f"Affidavit admitted with a warning Deployment/search (decision {warned.id}): "
    )
    assert events_for(kubectl, "catalog") == []

    # the cursor is persisted: a later decision is reported once, earlier ones not again
    state = get_json(kubectl, "configmap", "affidavit-operator-state", "-n", operator.namespace)
    assert int(state["data"]["eventsCursor"]) >= 3
    again = decision("denied", "checkout", (MISSING_REVIEW,))
    ledger.append(again)
    wait_for(lambda: len(events_for(kubectl, "checkout")) == 2, "the second denial's Event")
    assert sorted(
        e["message"].split("decision ")[1][:36] for e in events_for(kubectl, "checkout")
    ) == sorted([denied.id, again.id])


def test_denial_is_also_a_policy_report(operator: RunningOperator, kubectl: Kubectl) -> None:
    kubectl("create", "namespace", NS, check=False)
    denied = decision("denied", "billing", (MISSING_REVIEW,))
    Ledger(operator.ledger_url).append(denied)
    report = wait_for(
        lambda: get_json(kubectl, "policyreports.wgpolicyk8s.io", "affidavit-deployment-billing",
                         "-n", NS),
        "the PolicyReport",
    )  # fmt: skip
    assert report["scope"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "billing", "namespace": NS
    }  # fmt: skip
    (result,) = report["results"]
    assert (result["policy"], result["rule"], result["result"]) == (
        "AccountabilityPolicy/baseline", "review.critical.independentApprovals", "fail"
    )  # fmt: skip
    assert result["message"] == MISSING_REVIEW.message
    assert result["properties"] == {"decision": denied.id}
    assert report["summary"] == {"fail": 1, "warn": 0}
