"""Every image a Pod can run is judged, and what runs is what was judged, on a real kube-apiserver.

- `kubectl debug POD --image=...` (UPDATE of pods/ephemeralcontainers) is judged: an unreviewed
  debug image is refused, a reviewed one is admitted.
- An image volume (`spec.volumes[].image.reference`) is judged like a container.
- `kubectl apply --dry-run=server` and `kubectl diff` are judged and answered like the real
  request but leave no ledger row and no Event.
- A Deployment by tag: its Pod carries the digest the webhook verified (the templates keep the
  tag); after a retag, a new Pod by that tag is pinned to (and judged at) the new digest; a tag
  that does not resolve is not rewritten, and validation denies it as before; an image admitted
  by an exception is not rewritten either. A tag a Pod's update brings in (a container's new
  image, `kubectl debug`) is pinned the same way; the images an update keeps are left alone.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admission_e2e_support import (
    REPO,
    Releases,
    apply_and_sync,
    decision_id_in,
    denial_text,
    deployment,
    exception,
    from_now,
    latest,
    pod,
    policy,
    refused,
    review_violation,
    running_stack,
    tag,
)

from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.ledger import Ledger
from affidavit.policy import Decision
from affidavit.policy.messages import DRY_RUN_NOTE

SYSTEM = "affidavit-e2e-surface"
NS = "adm-surface"
POLICY = "adm-surface-baseline"


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo,
    releases: Releases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-surface")
    with running_stack(control_plane, releases.registry_host, work, SYSTEM) as running:
        running.kubectl("create", "namespace", NS)
        apply_and_sync(running, policy(POLICY, releases.registry_host, releases.public_pem))
        try:
            yield running
        finally:
            running.kubectl("delete", "accountabilitypolicy", POLICY, "--ignore-not-found")
            running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")


def rows_about(stack: ClusterStack, name: str) -> list[str]:
    ledger = Ledger(stack.ledger_url)
    try:
        return [r.id for r in ledger.query(namespace=NS) if r.name == name]
    finally:
        ledger.close()


def events_mentioning(stack: ClusterStack, text: str) -> list[dict[str, Any]]:
    out = stack.kubectl("get", "events", "-n", NS, "-o", "json").stdout
    return [e for e in json.loads(out)["items"] if text in e.get("message", "")]


def assert_review_refusal(
    stack: ClusterStack,
    proc: subprocess.CompletedProcess[str],
    image: str,
    revision: str,
    approved: str,
) -> Decision:
    decision = refused(stack, proc)
    violation = review_violation(POLICY, image, revision, approved)
    assert [v.message for v in decision.violations] == [violation]
    return decision


# --- kubectl debug ---------------------------------------------------------------------------


def test_kubectl_debug_with_an_unreviewed_image_is_refused(
    stack: ClusterStack, releases: Releases
) -> None:
    reviewed, late = releases.reviewed, releases.late
    stack.apply(pod("debug-me", NS, reviewed.image))
    proc = stack.kubectl(
        "debug", "debug-me", "-n", NS, f"--image={late.image}", "--container=dbg", check=False
    )
    decision = assert_review_refusal(stack, proc, late.image, late.revision, reviewed.revision)
    assert (decision.kind, decision.name, decision.operation) == ("Pod", "debug-me", "UPDATE")
    # judged on what the update brings in; the image the Pod runs was judged at its creation
    assert [i.ref for i in decision.images] == [late.image]
    assert f"{reviewed.image} ran in the Pod already; judged here: {late.image}" in proc.stderr
    got = stack.kubectl("get", "pod", "debug-me", "-n", NS, "-o", "json").stdout
    assert json.loads(got)["spec"].get("ephemeralContainers") is None

    stack.kubectl("debug", "debug-me", "-n", NS, f"--image={reviewed.image}", "--container=ok")
    got = stack.kubectl("get", "pod", "debug-me", "-n", NS, "-o", "json").stdout
    debug = json.loads(got)["spec"]["ephemeralContainers"]
    assert [(c["name"], c["image"]) for c in debug] == [("ok", reviewed.image)]


# --- image volumes ---------------------------------------------------------------------------


def with_image_volume(name: str, image: str, volume_image: str) -> dict[str, Any]:
    obj = pod(name, NS, image)
    obj["spec"]["volumes"] = [{"name": "model", "image": {"reference": volume_image}}]
    obj["spec"]["containers"][0]["volumeMounts"] = [{"name": "model", "mountPath": "/model"}]
    return obj


def test_an_unreviewed_image_volume_is_refused(stack: ClusterStack, releases: Releases) -> None:
    reviewed, late = releases.reviewed, releases.late
    proc = stack.apply(with_image_volume("volume-late", reviewed.image, late.image), check=False)
    decision = assert_review_refusal(stack, proc, late.image, late.revision, reviewed.revision)
    assert [i.ref for i in decision.images] == [reviewed.image, late.image]

    ok = stack.apply(with_image_volume("volume-ok", reviewed.image, reviewed.image))
    assert ok.stdout.strip() == "pod/volume-ok created"
    got = stack.kubectl("get", "pod", "volume-ok", "-n", NS, "-o", "json").stdout
    assert json.loads(got)["spec"]["volumes"][0]["image"]["reference"] == reviewed.image


# --- dry runs --------------------------------------------------------------------------------


def test_dry_runs_are_judged_but_leave_no_record_and_no_event(
    stack: ClusterStack, releases: Releases
) -> None:
    reviewed, late = releases.reviewed, releases.late
    manifest = json.dumps(deployment("dry-late", NS, late.image))
    dry = stack.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
    assert dry.returncode == 1, dry.stdout
    dry_id = decision_id_in(dry.stderr)
    violation = review_violation(POLICY, late.image, late.revision, reviewed.revision)
    assert (
        denial_text(
            f"Affidavit denied Deployment/dry-late in namespace {NS} (decision {dry_id}): "
            f"1 violation\n- {violation}\n{DRY_RUN_NOTE}"
        )
        in dry.stderr
    ), dry.stderr
    diff = stack.kubectl("diff", "-f", "-", input=manifest, check=False)
    assert diff.returncode > 1, diff.stdout
    diff_id = decision_id_in(diff.stderr)
    assert f"- {violation}\n{DRY_RUN_NOTE}" in diff.stderr

    admitted = json.dumps(deployment("dry-ok", NS, reviewed.image))
    out = stack.kubectl("apply", "--dry-run=server", "-f", "-", input=admitted)
    assert out.stdout.strip() == "deployment.apps/dry-ok created (server dry run)"
    assert stack.kubectl("diff", "-f", "-", input=admitted, check=False).returncode == 1

    # The real request is judged the same, and recorded; its Event comes after the dry runs'
    # would have (the operator follows the ledger in order), so none of theirs is pending.
    real = stack.apply(deployment("dry-late", NS, late.image), check=False)
    decision = assert_review_refusal(stack, real, late.image, late.revision, reviewed.revision)
    wait_for(lambda: events_mentioning(stack, decision.id), "the real denial's Event")
    assert rows_about(stack, "dry-late") == [decision.id]
    assert rows_about(stack, "dry-ok") == []
    for dry_run in (dry_id, diff_id):
        assert events_mentioning(stack, dry_run) == []


# --- pinning ---------------------------------------------------------------------------------


def pods_of(stack: ClusterStack, app: str) -> list[dict[str, Any]]:
    out = stack.kubectl("get", "pods", "-n", NS, "-l", f"app={app}", "-o", "json").stdout
    return list(json.loads(out)["items"])


def test_a_pod_runs_the_digest_that_was_verified(stack: ClusterStack, releases: Releases) -> None:
    reviewed, late = releases.reviewed, releases.late
    image = tag(releases, "pin-1", reviewed.digest)
    stack.apply(deployment("pinned", NS, image))
    (made,) = wait_for(lambda: pods_of(stack, "pinned"), "the Deployment's Pod")
    assert made["spec"]["containers"][0]["image"] == f"{image}@{reviewed.digest}"
    # The Pod runs the digest its Deployment was judged at: admitted on that decision.
    admitted = latest(stack, NS, "Deployment", "pinned")
    assert admitted.outcome == "allowed"
    assert [(i.ref, i.digest) for i in admitted.images] == [(image, reviewed.digest)]
    assert rows_about(stack, made["metadata"]["name"]) == []
    # Templates are judged, never rewritten: GitOps tools see no drift.
    template = "jsonpath={.spec.template.spec.containers[0].image}"
    assert stack.kubectl("get", "deployment", "pinned", "-n", NS, "-o", template).stdout == image
    rs = stack.kubectl("get", "replicasets", "-n", NS, "-l", "app=pinned", "-o", "json").stdout
    assert [r["spec"]["template"]["spec"]["containers"][0]["image"]
            for r in json.loads(rs)["items"]] == [image]  # fmt: skip

    # Retag: the running Pod keeps the digest that was judged; a new Pod by the tag is pinned
    # to the tag's new digest, judged at it, and refused.
    tag(releases, "pin-1", late.digest)
    kept = stack.kubectl("get", "pod", made["metadata"]["name"], "-n", NS, "-o", "json").stdout
    assert json.loads(kept)["spec"]["containers"][0]["image"] == f"{image}@{reviewed.digest}"
    proc = stack.apply(pod("pinned-after-retag", NS, image), check=False)
    decision = refused(stack, proc)
    # Named as pinned; the fix attests the digest (late.image is REPOSITORY@digest).
    violation = review_violation(POLICY, late.image, late.revision, reviewed.revision)
    assert [v.message for v in decision.violations] == [
        f"{image}@{late.digest}" + violation.removeprefix(late.image)
    ]
    assert [(i.ref, i.digest) for i in decision.images] == [(f"{image}@{late.digest}", late.digest)]


def test_a_tag_that_does_not_resolve_is_not_rewritten(
    stack: ClusterStack, releases: Releases
) -> None:
    image = f"{releases.registry_host}/{REPO}:never-pushed"
    proc = stack.apply(pod("unresolved", NS, image), check=False)
    decision = refused(stack, proc)
    assert [i.ref for i in decision.images] == [image]
    assert [(v.rule, v.image) for v in decision.violations] == [("evidence.missing", image)]


def test_an_image_admitted_by_exception_is_not_pinned(
    stack: ClusterStack, releases: Releases
) -> None:
    """Break-glass admits a tag by name, not by evidence: there is no verified digest to pin,
    and an exception naming a tag does not stretch to whatever digest is written after it."""
    image = tag(releases, "hotfix-1", releases.late.digest)
    apply_and_sync(stack, exception("hotfix", NS, [image], from_now(hours=1)))
    try:
        out = stack.apply(pod("hotfix", NS, image))
        assert out.stdout.strip() == "pod/hotfix created"
        got = stack.kubectl("get", "pod", "hotfix", "-n", NS, "-o", "json").stdout
        assert json.loads(got)["spec"]["containers"][0]["image"] == image
        assert latest(stack, NS, "Pod", "hotfix").outcome == "excepted"
        pinned = f"{image}@{releases.late.digest}"
        refused(stack, stack.apply(pod("hotfix-pinned", NS, pinned), check=False))
    finally:
        stack.kubectl("delete", "accountabilityexception", "hotfix", "-n", NS, "--ignore-not-found")


def test_a_reviewed_image_an_exception_also_covers_is_pinned(
    stack: ClusterStack, releases: Releases
) -> None:
    """An exception admits an image only where its evidence falls short. Where the evidence
    suffices the exception is not used, so the tag is pinned as any other. Left as written (as
    it was while any exception named it), a retag, then a gated Pod released or a restart,
    ran a digest nobody judged, under a decision that recorded a clean admission and no
    exception: even a digest the exception itself refuses (its requester deploying it)."""
    image = tag(releases, "covered-1", releases.reviewed.digest)
    apply_and_sync(stack, exception("covered", NS, [image], from_now(hours=1)))
    try:
        stack.apply(pod("covered", NS, image))
        got = stack.kubectl("get", "pod", "covered", "-n", NS, "-o", "json").stdout
        assert json.loads(got)["spec"]["containers"][0]["image"] == (
            f"{image}@{releases.reviewed.digest}"
        )
        decision = latest(stack, NS, "Pod", "covered")
        assert (decision.outcome, decision.exception) == ("allowed", None)
    finally:
        stack.kubectl(
            "delete", "accountabilityexception", "covered", "-n", NS, "--ignore-not-found"
        )


def test_an_image_an_update_or_kubectl_debug_brings_in_runs_the_digest_that_was_verified(
    stack: ClusterStack, releases: Releases
) -> None:
    """A Pod's image is mutable (`kubectl set image pod/...`), and `kubectl debug` adds one: each
    new tag is judged at the digest it named then, so it is pinned to that digest as a new Pod's
    is; otherwise a retag right after the admission (or before a restart under
    imagePullPolicy Always) ran a digest nobody judged. Images the update keeps are left as
    they are (rewriting one would restart its container)."""
    reviewed, late = releases.reviewed, releases.late
    first = tag(releases, "pin-update-1", reviewed.digest)
    second = tag(releases, "pin-update-2", reviewed.digest)
    debug = tag(releases, "pin-update-debug", reviewed.digest)
    stack.apply(pod("swapped", NS, reviewed.image))
    stack.kubectl("set", "image", "pod/swapped", f"api={first}", "-n", NS)
    stack.kubectl("debug", "swapped", "-n", NS, f"--image={debug}", "--container=dbg")
    got = json.loads(stack.kubectl("get", "pod", "swapped", "-n", NS, "-o", "json").stdout)
    assert got["spec"]["containers"][0]["image"] == f"{first}@{reviewed.digest}"
    assert got["spec"]["ephemeralContainers"][0]["image"] == f"{debug}@{reviewed.digest}"
    # Retagged: the swap to the tag is judged at its new digest, pinned there, and refused.
    tag(releases, "pin-update-2", late.digest)
    proc = stack.kubectl("set", "image", "pod/swapped", f"api={second}", "-n", NS, check=False)
    decision = refused(stack, proc)
    assert (decision.operation, decision.images[0].ref) == ("UPDATE", f"{second}@{late.digest}")
    # An update that keeps the images (a label) is not rewritten and not judged.
    stack.kubectl("label", "pod", "swapped", "-n", NS, "touched=yes")
    assert rows_about(stack, "swapped")[-1] == decision.id
