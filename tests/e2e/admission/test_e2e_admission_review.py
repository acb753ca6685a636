"""Differentiated review enforced by a real kube-apiserver through the webhook.

`kubectl apply` of a workload whose image carries an AI-assisted change to critical-tier code
without an independent approval on the final revision is refused with the actionable message
the webhook recorded; the operator reports the denial as an Event on the workload; the reviewed
image is admitted (and the Deployment controller's ReplicaSet and Pod pass the webhook on the
Deployment's decision, without a new one); patching
an admitted Deployment to the unreviewed image is refused; bare Pods and CronJobs are checked.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from admission_e2e_support import (
    Releases,
    apply_and_sync,
    cronjob,
    decision_id_in,
    denial_text,
    deployment,
    latest,
    pod,
    policy,
    recorded,
    review_violation,
    running_stack,
)

from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.ledger import Ledger
from affidavit.policy import Decision, admission_message

SYSTEM = "affidavit-e2e-review"
NS = "adm-review"
POLICY = "adm-review-baseline"


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo,
    releases: Releases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-review")
    with running_stack(control_plane, releases.registry_host, work, SYSTEM) as running:
        running.kubectl("create", "namespace", NS)
        apply_and_sync(running, policy(POLICY, releases.registry_host, releases.public_pem))
        try:
            yield running
        finally:
            running.kubectl("delete", "accountabilitypolicy", POLICY, "--ignore-not-found")
            running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")


def assert_refused(
    stack: ClusterStack,
    proc: subprocess.CompletedProcess[str],
    kind: str,
    name: str,
    image: str,
    revision: str,
    approved: str,
) -> Decision:
    """kubectl failed with the exact admission message of the recorded denial (Bo approved
    ``approved``, before the AI change at ``revision`` was pushed)."""
    assert proc.returncode == 1, proc.stdout
    decision = recorded(stack, decision_id_in(proc.stderr))
    assert (decision.outcome, decision.kind, decision.name, decision.namespace) == (
        "denied",
        kind,
        name,
        NS,
    )
    assert [v.message for v in decision.violations] == [
        review_violation(POLICY, image, revision, approved)
    ]
    message = admission_message(decision)
    assert message == (
        f"Affidavit denied {kind}/{name} in namespace {NS} (decision {decision.id}): "
        f"1 violation\n- {review_violation(POLICY, image, revision, approved)}\n"
        f"run `affidavit explain --decision {decision.id}` for the full record"
    )
    assert denial_text(message) in proc.stderr
    return decision


def test_unreviewed_ai_change_to_critical_code_is_refused(
    stack: ClusterStack, releases: Releases
) -> None:
    late = releases.late
    proc = stack.apply(deployment("login-late", NS, late.image), check=False)
    decision = assert_refused(
        stack,
        proc,
        "Deployment",
        "login-late",
        late.image,
        late.revision,
        releases.reviewed.revision,
    )
    assert stack.kubectl("get", "deployment", "login-late", "-n", NS, check=False).returncode == 1

    # The operator follows the ledger and tells the workload's owners where they look first.
    def event() -> dict[str, object] | None:
        out = stack.kubectl(
            "get", "events", "-n", NS, "--field-selector", "reason=AffidavitDenied", "-o", "json"
        ).stdout
        items = json.loads(out)["items"]
        return next((e for e in items if decision.id in e["message"]), None)

    found = wait_for(event, "an AffidavitDenied Event for the refused Deployment")
    assert found["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "login-late",
        "namespace": NS,
    }
    assert found["type"] == "Warning"
    # A short reason (the first rule and what was found), never a sentence cut in the middle,
    # and the command that shows the full record from a laptop.
    first = decision.violations[0]
    more = f" (+{len(decision.violations) - 1} more)" if len(decision.violations) > 1 else ""
    assert found["message"] == (
        f"Affidavit denied Deployment/login-late (decision {decision.id}): {first.rule}: found "
        f"{first.found}{more}; run `kubectl affidavit why deployment/login-late -n {NS}` for the "
        "full record"
    )


def test_reviewed_image_is_admitted_and_its_replicaset_on_that_decision(
    stack: ClusterStack, releases: Releases
) -> None:
    proc = stack.apply(deployment("login", NS, releases.reviewed.image))
    assert proc.stdout.strip() == "deployment.apps/login created"
    assert "Warning" not in proc.stderr
    decision = latest(stack, NS, "Deployment", "login")
    assert (decision.outcome, decision.violations) == ("allowed", ())
    assert {(e.predicate_type.rsplit("/", 2)[-2], e.signer) for e in decision.evidence} == {
        ("ai-provenance", "ci-release-key"),
        ("code-review", "ci-release-key"),
    }

    def replicaset() -> list[dict[str, object]]:
        out = stack.kubectl("get", "replicasets", "-n", NS, "-l", "app=login", "-o", "json")
        return list(json.loads(out.stdout)["items"])

    made = wait_for(replicaset, "the Deployment controller to create a ReplicaSet")
    rs_name = made[0]["metadata"]["name"]
    wait_for(
        lambda: stack.kubectl("get", "pods", "-n", NS, "-l", "app=login", "-o", "name").stdout,
        "the ReplicaSet controller to create a Pod",
    )
    # They run the Deployment's images: admitted on its decision, not on new ones.
    ledger = Ledger(stack.ledger_url)
    try:
        children = [r for r in ledger.query(namespace=NS) if r.name.startswith(rs_name)]
    finally:
        ledger.close()
    assert children == []


def test_patching_an_admitted_deployment_to_the_unreviewed_image_is_refused(
    stack: ClusterStack, releases: Releases
) -> None:
    reviewed, late = releases.reviewed, releases.late
    stack.apply(deployment("login-patched", NS, reviewed.image))
    proc = stack.kubectl(
        "set", "image", "deployment/login-patched", f"api={late.image}", "-n", NS, check=False
    )
    assert_refused(
        stack,
        proc,
        "Deployment",
        "login-patched",
        late.image,
        late.revision,
        releases.reviewed.revision,
    )
    image = stack.kubectl(
        "get", "deployment", "login-patched", "-n", NS,
        "-o", "jsonpath={.spec.template.spec.containers[0].image}",
    ).stdout  # fmt: skip
    assert image == reviewed.image


def test_bare_pods_and_cronjobs_are_checked(stack: ClusterStack, releases: Releases) -> None:
    late = releases.late
    proc = stack.apply(pod("login-pod", NS, late.image), check=False)
    assert_refused(
        stack, proc, "Pod", "login-pod", late.image, late.revision, releases.reviewed.revision
    )
    proc = stack.apply(cronjob("login-rotate", NS, late.image), check=False)
    assert_refused(
        stack,
        proc,
        "CronJob",
        "login-rotate",
        late.image,
        late.revision,
        releases.reviewed.revision,
    )

    ok = stack.apply(pod("login-pod", NS, releases.reviewed.image))
    assert ok.stdout.strip() == "pod/login-pod created"
    ok = stack.apply(cronjob("login-rotate", NS, releases.reviewed.image))
    assert ok.stdout.strip() == "cronjob.batch/login-rotate created"
    assert latest(stack, NS, "CronJob", "login-rotate").outcome == "allowed"
