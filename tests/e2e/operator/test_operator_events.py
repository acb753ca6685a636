"""Denials and warnings recorded in a real SQLite ledger become Kubernetes Events on the
workload (reason, message with the decision id), once each; allowed decisions make none."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from operator_support import Kubectl, RunningOperator, get_json

from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.ledger import Ledger
from affidavit.operator import kube
from affidavit.operator.events import CURSOR_KEY, STATE_CONFIGMAP, EventReporter
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
        f"{MISSING_REVIEW.rule}: found {MISSING_REVIEW.found}; run `kubectl affidavit why "
        f"deployment/checkout -n {NS}` for the full record"
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
    # (saved after the Events and the report are written: waited for, not read at once)
    def saved() -> str | None:
        state = get_json(kubectl, "configmap", "affidavit-operator-state", "-n", operator.namespace)
        cursor = str(((state or {}).get("data") or {}).get("eventsCursor") or "")
        return cursor if cursor and int(cursor.partition(":")[0]) >= 3 else None

    seq, _, digest = wait_for(saved, "the events cursor past the third decision").partition(":")
    assert digest == ledger.after(int(seq) - 1, 1)[0].hash
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


@pytest.mark.parametrize("stored", [f"1:{'f' * 64}", "1"], ids=["other-ledger", "no-hash"])
def test_a_cursor_from_another_ledger_is_not_trusted(
    control_plane: ControlPlaneInfo, kubectl: Kubectl, tmp_path: Path, stored: str
) -> None:
    """A cursor stored for one ledger must not make the reporter skip another ledger's decisions
    (an operator re-pointed at a new or recreated ledger in the same namespace)."""
    state_ns = "affidavit-cursor-e2e"
    kubectl("create", "namespace", state_ns, check=False)
    kubectl("create", "namespace", NS, check=False)
    kubectl("delete", "configmap", STATE_CONFIGMAP, "-n", state_ns, "--ignore-not-found")
    kubectl("create", "configmap", STATE_CONFIGMAP, "-n", state_ns,
            f"--from-literal={CURSOR_KEY}={stored}")  # fmt: skip
    ledger = Ledger(f"sqlite:///{tmp_path / 'new-ledger.db'}")
    names = [f"cursor-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        ledger.append(decision("denied", name, (MISSING_REVIEW,)))
    reporter = EventReporter(api=kube.connect(control_plane.kubeconfig), ledger=ledger,
                             namespace=state_ns)  # fmt: skip
    assert reporter.load_cursor() == 0
    assert reporter.poll_once() == 2
    assert [len(events_for(kubectl, n)) for n in names] == [1, 1]
    # its own cursor is trusted: a fresh reporter resumes after the last reported decision
    again = EventReporter(api=kube.connect(control_plane.kubeconfig), ledger=ledger,
                          namespace=state_ns)  # fmt: skip
    assert again.load_cursor() == 2
    assert again.poll_once() == 0


def test_a_decision_the_api_server_refuses_to_report_does_not_hold_back_the_rest(
    control_plane: ControlPlaneInfo, kubectl: Kubectl, tmp_path: Path, crds: None
) -> None:
    """A denial in a namespace deleted since, a Pod named with all 253 characters a name may
    have (its report's name would be longer) and a decision of hundreds of violations: each is
    reported as far as the API server allows, or skipped and counted, and the denial after them
    still becomes an Event. Before, the first refusal was raised on every poll, the cursor never
    moved, and no Event or PolicyReport reached any namespace again."""
    state_ns = "affidavit-skip-e2e"
    kubectl("create", "namespace", state_ns, check=False)
    kubectl("create", "namespace", NS, check=False)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    gone = replace(decision("denied", "checkout", (MISSING_REVIEW,)),
                   namespace=f"affidavit-gone-{uuid.uuid4().hex[:8]}")  # fmt: skip
    long_name = ("p" + uuid.uuid4().hex) * 8
    long_name = (long_name * 2)[:253]
    pod = replace(decision("denied", long_name, (MISSING_REVIEW,)), kind="Pod")
    pod_again = replace(decision("denied", long_name, (MISSING_REVIEW,)), kind="Pod")
    many = tuple(replace(MISSING_REVIEW, found=f"junk layer {i}: " + "x" * 10_000)
                 for i in range(300))  # fmt: skip
    crowded = decision("denied", f"crowded-{uuid.uuid4().hex[:8]}", many)
    after = decision("denied", f"after-{uuid.uuid4().hex[:8]}", (MISSING_REVIEW,))
    for d in (gone, pod, pod_again, crowded, after):
        ledger.append(d)
    reporter = EventReporter(api=kube.connect(control_plane.kubeconfig), ledger=ledger,
                             namespace=state_ns)  # fmt: skip

    assert reporter.poll_once() == 4
    assert reporter.skipped == 1  # the deleted namespace's
    assert b"affidavit_operator_events_skipped_total 1\n" in reporter.render()
    assert len(events_for(kubectl, after.name)) == 1
    # both denials of the long-named Pod have their own Event: the decision id is kept whole
    ids = sorted(e["message"].split("decision ")[1][:36] for e in events_for(kubectl, long_name))
    assert ids == sorted([pod.id, pod_again.id])
    reports = get_json(kubectl, "policyreports.wgpolicyk8s.io", "-n", NS)
    assert reports is not None
    (long_report,) = [r for r in reports["items"] if r["scope"]["name"] == long_name]
    assert len(long_report["metadata"]["name"]) <= 253
    assert long_report["results"][0]["properties"] == {"decision": pod_again.id}
    (crowded_report,) = [r for r in reports["items"] if r["scope"]["name"] == crowded.name]
    assert len(crowded_report["results"]) == 50
    assert crowded_report["results"][-1]["properties"]["omitted"] == "250"
    assert all(len(r["message"]) <= 4000 for r in crowded_report["results"])
    # the cursor moved past all five: a fresh reporter has nothing left to do
    again = EventReporter(api=kube.connect(control_plane.kubeconfig), ledger=ledger,
                          namespace=state_ns)  # fmt: skip
    assert again.load_cursor() == 5
    assert again.poll_once() == 0
