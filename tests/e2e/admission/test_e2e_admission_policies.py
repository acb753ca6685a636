"""How policy objects change the webhook's answers on a real control plane, without restarts.

A RegionPolicy for ``eu-*`` makes the webhook of a cluster in eu-west-1 refuse an image that the
same cluster admits in us-east-1; Warn mode admits with kubectl's ``Warning:``; an unexpired
AccountabilityException admits a non-conforming workload and the ledger records it, an expired
one does not (nor does one that expires while the webhook runs); the decision keeps a snapshot of
what was true when it was taken (AI involvement, review, the exception's details, the policy
index); and a policy edit changes the running webhook's behaviour once the operator republishes
the index.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admission_e2e_support import (
    Releases,
    apply_and_sync,
    delete_and_sync,
    deployment,
    exception,
    from_now,
    generation_of,
    index_has,
    latest,
    policy,
    refused,
    region_policy,
    review_violation,
    running_stack,
    webhook_loaded,
)

from affidavit.attestations.predicates import AI_PROVENANCE_V1
from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.names import REQUESTED_BY_ANNOTATION, REQUESTED_BY_GROUPS_ANNOTATION
from affidavit.policy.decision import (
    AiInvolvement,
    Caller,
    ExceptionUsed,
    ReviewSeen,
    Snapshot,
    ToolUse,
)
from affidavit.policy.messages import DRY_RUN_NOTE
from loopback_webhooks import loopback_webhook

SYSTEM = "affidavit-e2e-policies"
NS = "adm-policies"
#: The user of the suite's kubeconfig (its client certificate's CN), as the API server names it.
ADMIN = "affidavit-admin"
POLICY = "adm-policies-baseline"


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo, releases: Releases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-policies")
    with running_stack(control_plane, releases.registry_host, work, SYSTEM) as running:
        running.kubectl("create", "namespace", NS)
        apply_and_sync(running, baseline(releases))
        try:
            yield running
        finally:
            running.kubectl("delete", "accountabilitypolicy", POLICY, "--ignore-not-found")
            running.kubectl("delete", "regionpolicy", "adm-eu", "--ignore-not-found")
            running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")


def baseline(releases: Releases, **spec: Any) -> dict[str, Any]:
    return policy(POLICY, releases.registry_host, releases.public_pem, **spec)


def dry_run(stack: ClusterStack, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return stack.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)


def test_region_policy_makes_eu_clusters_stricter(stack: ClusterStack, releases: Releases) -> None:
    image = releases.reviewed.image
    eu = region_policy(
        "adm-eu",
        ["eu-*"],
        jurisdictions=["pci-dss"],
        groups={"security": ["sam"], "secure-code-reviewers": ["bo"]},
    )
    apply_and_sync(stack, eu)
    try:
        us = stack.apply(deployment("ledger-us", NS, image))
        assert us.stdout.strip() == "deployment.apps/ledger-us created"
        assert latest(stack, NS, "Deployment", "ledger-us").region == "us-east-1"

        stack.start_webhook(region="eu-west-1")
        decision = refused(stack, stack.apply(deployment("ledger-eu", NS, image), check=False))
        assert decision.region == "eu-west-1"
        pr = "https://github.com/acme/payments-api/pull/42"
        assert [v.message for v in decision.violations] == [
            f"{image}: review.critical.securityReview (preset/pci-dss via RegionPolicy/adm-eu "
            "[PCI DSS 6.2.4]): found independent approvals by bo, none a member of `security`; "
            "expected an independent approval by a member of `security` (AI-involved changes "
            "touch tier critical: src/auth/login.py); fix: get an approval from a member of "
            f"`security` (sam) on the final revision of {pr}, then run `affidavit collect review "
            "--github-pr pr.json --github-reviews reviews.json --github-commits commits.json "
            f"--head {releases.reviewed.revision} --output review.json && affidavit attest "
            f"{image} --predicate review.json "
            "--type https://affidavit.dev/attestations/code-review/v1 --key <key>`"
        ]
    finally:
        stack.start_webhook()
        delete_and_sync(stack, "regionpolicy", "adm-eu")


def test_warn_mode_admits_with_a_warning(stack: ClusterStack, releases: Releases) -> None:
    late = releases.late
    apply_and_sync(stack, baseline(releases, mode="Warn"))
    try:
        proc = stack.apply(deployment("login-warned", NS, late.image))
        assert proc.stdout.strip() == "deployment.apps/login-warned created"
        violation = review_violation(POLICY, late.image, late.revision, releases.reviewed.revision)
        assert proc.stderr.splitlines() == [f"Warning: {violation}"]
        decision = latest(stack, NS, "Deployment", "login-warned")
        assert (decision.outcome, decision.mode) == ("warned", "Warn")
        assert [v.message for v in decision.violations] == [violation]
    finally:
        apply_and_sync(stack, baseline(releases))


def test_unexpired_exception_admits_and_is_recorded(
    stack: ClusterStack, releases: Releases
) -> None:
    late = releases.late
    hotfix = exception("login-hotfix", NS, [late.image], from_now(hours=4))
    hotfix["spec"]["workloads"] = [{"kind": "Deployment", "name": "login-hotfix"}]
    apply_and_sync(stack, hotfix)
    try:
        proc = stack.apply(deployment("login-hotfix", NS, late.image))
        assert proc.stdout.strip() == "deployment.apps/login-hotfix created"
        assert proc.stderr.splitlines() == [f"Warning: admitted under exception {NS}/login-hotfix"]
        decision = latest(stack, NS, "Deployment", "login-hotfix")
        assert (decision.outcome, decision.exception) == ("excepted", f"{NS}/login-hotfix")
        assert [v.message for v in decision.violations] == [
            review_violation(POLICY, late.image, late.revision, releases.reviewed.revision)
        ]
        # The exception names one workload: another Deployment of the same image is refused.
        other = refused(stack, stack.apply(deployment("login-other", NS, late.image), check=False))
        assert other.exception is None
    finally:
        delete_and_sync(stack, "accountabilityexception", "login-hotfix", NS)


def test_the_decision_records_what_was_true_when_it_was_taken(
    stack: ClusterStack, releases: Releases
) -> None:
    """The snapshot in the hashed decision: the image's AI involvement from its verified
    provenance, its review evidence, the exception as it read (owner, incident, approvers,
    expiry), the policy index judged with, and a caller the webhook did not authenticate (no
    client CA here). The exception object is deleted afterwards; the record still says it all."""
    late = releases.late
    expires = from_now(hours=4)
    hotfix = exception("login-snapshot", NS, [late.image], expires)
    hotfix["spec"]["workloads"] = [{"kind": "Deployment", "name": "login-snapshot"}]
    index_digest = apply_and_sync(stack, hotfix)
    try:
        stack.apply(deployment("login-snapshot", NS, late.image))
    finally:
        delete_and_sync(stack, "accountabilityexception", "login-snapshot", NS)
    decision = latest(stack, NS, "Deployment", "login-snapshot")
    assert decision.outcome == "excepted"
    (image,) = decision.images
    (provenance,) = [e for e in decision.evidence if e.predicate_type == AI_PROVENANCE_V1]
    assert decision.snapshot == Snapshot(
        policy_index=index_digest,
        caller=Caller(authenticated=False),
        images=(
            AiInvolvement(
                image=image.ref,
                digest=late.digest,
                provenance=provenance.envelope_digest,
                commits=4,
                assisted=2,
                generated=1,
                undeclared=1,
                tools=(ToolUse("Claude Code", "Claude Opus 4.6", 2), ToolUse("aider", None, 1)),
                tiers=("critical", "low"),
                review=ReviewSeen(
                    "https://github.com/acme/payments-api/pull/42",
                    approvals=0,
                    independent_approvals=0,
                ),
            ),
        ),
        exceptions=(
            ExceptionUsed(
                namespace=NS,
                name="login-snapshot",
                owner="olga",
                incident_id="INC-2041",
                approvers=("victor",),
                expires_at=expires,
                reason="login outage hotfix",
                requested_by=ADMIN,  # the webhook's stamp: who applied it
            ),
        ),
    )
    assert decision.snapshot.images[0].ai_touched and not decision.snapshot.images[0].reviewed


def test_the_decision_records_who_asked_for_the_exception_as_the_api_server_knows_them(
    stack: ClusterStack, releases: Releases
) -> None:
    """An exception's owner and approvers are whatever its author typed. The webhook stamps the
    name the API server authenticated: a stamp the author wrote is overwritten, another user's
    edit of the annotation alone is undone, an edit of the spec names its writer, and the
    decision the exception admits records that name. Under ``exceptions.separateRequester``
    the exception no longer admits what its requester deploys themself."""
    late = releases.late
    name = "login-requested"
    stack.apply(exception_writers())
    hotfix = exception(name, NS, [late.image], from_now(hours=4))
    hotfix["spec"]["workloads"] = [{"kind": "Deployment", "name": f"{name}*"}]
    hotfix["metadata"]["annotations"] = {REQUESTED_BY_ANNOTATION: "victor"}  # forged
    try:
        stack.kubectl("apply", "--as=alice", "-f", "-", input=json.dumps(hotfix))
        assert requester(stack, name) == "alice"
        stack.kubectl(
            "annotate", "--as=bob", "--overwrite", "accountabilityexception", name, "-n", NS,
            f"{REQUESTED_BY_ANNOTATION}=bob",
        )  # fmt: skip
        assert requester(stack, name) == "alice"
        stack.kubectl(
            "patch", "--as=bob", "--type=merge", "accountabilityexception", name, "-n", NS,
            "-p", json.dumps({"spec": {"reason": "login outage hotfix, extended by bob"}}),
        )  # fmt: skip
        assert requester(stack, name) == "bob"
        generation = generation_of(stack, "accountabilityexception", name, NS)
        webhook_loaded(stack, index_has("exceptions", name, generation, NS))
        stack.apply(deployment(name, NS, late.image))
        decision = latest(stack, NS, "Deployment", name)
        assert decision.outcome == "excepted" and decision.snapshot is not None
        (used,) = decision.snapshot.exceptions
        assert (used.owner, used.approvers, used.requested_by) == ("olga", ("victor",), "bob")

        # Separation of duties: bob's exception does not admit what bob deploys himself.
        apply_and_sync(stack, baseline(releases, exceptions={"separateRequester": True}))
        own = deployment(f"{name}-bob", NS, late.image)
        proc = stack.kubectl("apply", "--as=bob", "-f", "-", input=json.dumps(own), check=False)
        refusal = refused(stack, proc)
        assert refusal.user == "bob"
        (sod,) = [v for v in refusal.violations if v.rule == "exceptions.separateRequester"]
        assert sod.found == (
            f"the exceptions covering it cannot admit what bob deploys: "
            f"{NS}/{name} (requested by bob)"
        )
        # someone else deploying the same is admitted under it
        stack.apply(own)
        assert latest(stack, NS, "Deployment", f"{name}-bob").outcome == "excepted"
    finally:
        apply_and_sync(stack, baseline(releases))
        delete_and_sync(stack, "accountabilityexception", name, NS)


def test_a_requester_who_may_act_as_the_deploying_service_account_is_its_deployer(
    stack: ClusterStack, releases: Releases
) -> None:
    """``separateRequester`` compared names alone: bob requested the exception, then applied
    the workload as the namespace's deploy ServiceAccount (``kubectl --as=system:serviceaccount:
    NS:deployer``, which the built-in ``edit`` role lets anyone in the namespace do), and the
    exception admitted it as if a second person had. The webhook now asks the API server
    whether the requester, in the groups stamped with its name, may impersonate the deployer
    or mint its token; bob may, through a group (as most RBAC is granted), so the exception is
    his own. alice may not: her exception admits what the ServiceAccount deploys."""
    late = releases.late
    name = "login-acting"
    deployer = f"system:serviceaccount:{NS}:deployer"
    stack.apply(exception_writers())
    stack.apply(deploy_account())
    hotfix = exception(name, NS, [late.image], from_now(hours=4))
    hotfix["spec"]["workloads"] = [{"kind": "Deployment", "name": f"{name}*"}]
    try:
        stack.kubectl(
            "apply", "--as=bob", "--as-group=oncall", "--as-group=system:authenticated",
            "-f", "-", input=json.dumps(hotfix),
        )  # fmt: skip
        got = json.loads(
            stack.kubectl("get", "accountabilityexception", name, "-n", NS, "-o", "json").stdout
        )
        annotations = got["metadata"]["annotations"]
        assert annotations[REQUESTED_BY_ANNOTATION] == "bob"
        assert json.loads(annotations[REQUESTED_BY_GROUPS_ANNOTATION]) == [
            "oncall",
            "system:authenticated",
        ]
        generation = generation_of(stack, "accountabilityexception", name, NS)
        webhook_loaded(stack, index_has("exceptions", name, generation, NS))
        apply_and_sync(stack, baseline(releases, exceptions={"separateRequester": True}))
        as_deployer = deployment(f"{name}-ci", NS, late.image)
        proc = stack.kubectl(
            "apply", f"--as={deployer}", "-f", "-", input=json.dumps(as_deployer), check=False
        )
        refusal = refused(stack, proc)
        assert refusal.user == deployer
        (sod,) = [v for v in refusal.violations if v.rule == "exceptions.separateRequester"]
        assert sod.found == (
            f"the exceptions covering it cannot admit what {deployer} deploys: {NS}/{name} "
            "(requested by bob, who may act as the deployer: impersonate it or mint its token)"
        )
        # alice (no such right) rewrites the exception: it admits what the account deploys
        stack.kubectl(
            "patch", "--as=alice", "--type=merge", "accountabilityexception", name, "-n", NS,
            "-p", json.dumps({"spec": {"reason": "login outage hotfix, taken over by alice"}}),
        )  # fmt: skip
        webhook_loaded(
            stack,
            index_has(
                "exceptions", name, generation_of(stack, "accountabilityexception", name, NS), NS
            ),
        )
        stack.kubectl("apply", f"--as={deployer}", "-f", "-", input=json.dumps(as_deployer))
        admitted = latest(stack, NS, "Deployment", f"{name}-ci")
        assert (admitted.outcome, admitted.user) == ("excepted", deployer)
    finally:
        apply_and_sync(stack, baseline(releases))
        delete_and_sync(stack, "accountabilityexception", name, NS)


def deploy_account() -> dict[str, Any]:
    """The namespace's deploy ServiceAccount may write Deployments; the group ``oncall`` may
    impersonate it (as the built-in ``edit`` role lets its holders)."""

    def role(name: str, rules: list[dict[str, Any]], subject: dict[str, str]) -> list[Any]:
        return [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": name, "namespace": NS}, "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": name, "namespace": NS},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
             "subjects": [subject]},
        ]  # fmt: skip

    writes = [{"apiGroups": ["apps"], "resources": ["deployments"],
               "verbs": ["get", "create", "patch"]}]  # fmt: skip
    acts = [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
             "resourceNames": ["deployer"]}]  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "deployer", "namespace": NS}},
            *role("deployer-writes", writes,
                  {"kind": "ServiceAccount", "name": "deployer", "namespace": NS}),
            *role("oncall-acts-as-deployer", acts,
                  {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "oncall"}),
        ],
    }  # fmt: skip


def test_a_later_mutating_webhook_cannot_rewrite_the_stamp(
    stack: ClusterStack, tmp_path: Path
) -> None:
    """A mutating webhook the API server calls after Affidavit's (a namespace's own mutation
    policy, a Kyverno ``Policy`` its developers may write) rewrote the stamp to a name of its
    choosing, and the exception recorded that name as its requester. The stamping webhook is
    called again when a later one changed the object (``reinvocationPolicy: IfNeeded``) and puts
    the API server's word back."""
    name = "login-tampered"
    stack.apply(exception_writers())
    forged = REQUESTED_BY_ANNOTATION.replace("~", "~0").replace("/", "~1")

    def tamper(request: dict[str, Any]) -> dict[str, Any]:
        annotations = request["object"].get("metadata", {}).get("annotations") or {}
        if annotations.get(REQUESTED_BY_ANNOTATION) == "victor":
            return {"allowed": True}
        return {
            "allowed": True,
            "patch": [{"op": "add", "path": f"/metadata/annotations/{forged}", "value": "victor"}],
        }

    hotfix = exception(name, NS, ["registry.example/x:1"], from_now(hours=4))
    hotfix["metadata"]["annotations"] = {"team": "payments"}
    config = "zz-tamper-" + NS  # called after Affidavit's (configurations in name order)
    with loopback_webhook(tamper, tmp_path, "tamper") as server:
        stack.apply(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": config},
                "webhooks": [
                    {
                        "name": "tamper.policies.example",
                        "admissionReviewVersions": ["v1"],
                        "sideEffects": "None",
                        "failurePolicy": "Fail",
                        "timeoutSeconds": 5,
                        "reinvocationPolicy": "Never",
                        "clientConfig": server.client_config(),
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
                        "rules": [
                            {
                                "apiGroups": ["affidavit.dev"],
                                "apiVersions": ["v1alpha1"],
                                "operations": ["CREATE", "UPDATE"],
                                "resources": ["accountabilityexceptions"],
                            }
                        ],
                    }
                ],
            }
        )
        try:
            wait_for(
                lambda: _tamperer_called(stack, hotfix, server.reviews), "the tamperer to be called"
            )
            called = len(server.reviews)
            stack.kubectl("apply", "--as=alice", "-f", "-", input=json.dumps(hotfix))
            assert len(server.reviews) > called  # the tamperer rewrote the stamp
            assert requester(stack, name) == "alice"
        finally:
            stack.kubectl("delete", "mutatingwebhookconfiguration", config, "--ignore-not-found")
            delete_and_sync(stack, "accountabilityexception", name, NS)


def _tamperer_called(stack: ClusterStack, exc: dict[str, Any], reviews: list[Any]) -> bool:
    """Whether the API server calls the tamperer yet (its configuration is read in the
    background): a dry run of the exception reaches it."""
    probe = {**exc, "metadata": {**exc["metadata"], "name": "tamper-probe"}}
    stack.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False)
    return bool(reviews)


def exception_writers() -> dict[str, Any]:
    """alice and bob may write AccountabilityExceptions and Deployments in NS."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "exception-writers", "namespace": NS},
                "rules": [
                    {
                        "apiGroups": ["affidavit.dev"],
                        "resources": ["accountabilityexceptions"],
                        "verbs": ["get", "list", "create", "update", "patch"],
                    },
                    {
                        "apiGroups": ["apps"],
                        "resources": ["deployments"],
                        "verbs": ["get", "create", "patch"],
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "exception-writers", "namespace": NS},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "exception-writers",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                    for user in ("alice", "bob")
                ],
            },
        ],
    }


def requester(stack: ClusterStack, name: str) -> str | None:
    got = json.loads(
        stack.kubectl("get", "accountabilityexception", name, "-n", NS, "-o", "json").stdout
    )
    value: str | None = (got["metadata"].get("annotations") or {}).get(REQUESTED_BY_ANNOTATION)
    return value


def test_expired_exception_does_not_admit(stack: ClusterStack, releases: Releases) -> None:
    late = releases.late
    stale = exception("login-stale", NS, [late.image], from_now(hours=-1))
    stack.apply(stale)
    try:
        wait_for(
            lambda: stack.kubectl(
                "get", "accountabilityexception", "login-stale", "-n", NS,
                "-o", "jsonpath={.status.phase}",
            ).stdout == "Expired",
            "the operator to mark the exception Expired",
        )  # fmt: skip
        decision = refused(
            stack, stack.apply(deployment("login-stale", NS, late.image), check=False)
        )
        assert decision.exception is None
        assert [v.message for v in decision.violations] == [
            review_violation(POLICY, late.image, late.revision, releases.reviewed.revision)
        ]
    finally:
        stack.kubectl("delete", "accountabilityexception", "login-stale", "-n", NS)


def test_exception_stops_admitting_when_it_expires(stack: ClusterStack, releases: Releases) -> None:
    late = releases.late
    short = exception("login-short", NS, [late.image], from_now(hours=1))
    short["spec"]["workloads"] = [{"kind": "Deployment", "name": "login-short"}]
    apply_and_sync(stack, short)
    try:
        first = dry_run(stack, deployment("login-short", NS, late.image))
        assert first.returncode == 0, first.stderr
        # A dry run is answered like the real request but not recorded: read the answer.
        assert f"Warning: admitted under exception {NS}/login-short" in first.stderr
        # Its owner shortens it: it now ends within seconds, by the clock.
        stack.kubectl("patch", "accountabilityexception", "login-short", "-n", NS,
                      "--type=merge", "-p",
                      json.dumps({"spec": {"expiresAt": from_now(seconds=3)}}))  # fmt: skip
        # The operator republishes the index without it at expiresAt; the webhook also
        # refuses an expired exception on its own. Poll until the answer changes.
        last = wait_for(
            lambda: (
                (p := dry_run(stack, deployment("login-short", NS, late.image))).returncode and p
            ),
            "the exception to expire",
            timeout=120,
        )
        assert f"Affidavit denied Deployment/login-short in namespace {NS}" in last.stderr
        assert last.stderr.rstrip().endswith(DRY_RUN_NOTE)
        assert "exception" not in last.stderr
    finally:
        stack.kubectl("delete", "accountabilityexception", "login-short", "-n", NS)


def test_policy_edit_takes_effect_without_restarting_the_webhook(
    stack: ClusterStack, releases: Releases
) -> None:
    assert stack.webhook is not None
    pid = stack.webhook.popen.pid
    reviewed = releases.reviewed
    workload = deployment("login-edit", NS, reviewed.image)
    assert dry_run(stack, workload).returncode == 0
    stricter = {"spec": {"require": {"tiers": {"critical": {"independentApprovals": 2}}}}}
    stack.kubectl("patch", "accountabilitypolicy", POLICY, "--type", "merge",
                  "-p", json.dumps(stricter))  # fmt: skip
    try:
        last = wait_for(
            lambda: (p := dry_run(stack, workload)).returncode and p,
            "the running webhook to apply the stricter policy",
        )
        pr = "https://github.com/acme/payments-api/pull/42"
        assert "): 1 violation\n" in last.stderr
        assert (
            f"review.critical.independentApprovals (AccountabilityPolicy/{POLICY}): "
            f"found 1 independent approval on the final revision of {pr}; "
            "expected at least 2 (AI-involved changes touch tier critical: src/auth/login.py)"
        ) in last.stderr
        assert last.stderr.rstrip().endswith(DRY_RUN_NOTE)
    finally:
        looser = {"spec": {"require": {"tiers": {"critical": {"independentApprovals": 1}}}}}
        stack.kubectl("patch", "accountabilitypolicy", POLICY, "--type", "merge",
                      "-p", json.dumps(looser))  # fmt: skip
    wait_for(
        lambda: dry_run(stack, workload).returncode == 0,
        "the running webhook to apply the relaxed policy",
    )
    assert stack.webhook.popen.pid == pid and stack.webhook.alive()
