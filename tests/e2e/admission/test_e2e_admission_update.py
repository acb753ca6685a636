"""What was admitted keeps running after a policy tightens, on the real control plane with
kube-controller-manager: scale 1→3, a rollout restart of an unchanged template and a deleted
Pod all get their ReplicaSets and Pods with no denial in the ledger and no FailedCreate Event,
while a new image is refused, and so is a Pod or ReplicaSet that claims an admitted owner but
runs other images, or names it with a forged UID. The Deployment runs a tag, so its Pods are
pinned to the digest that was judged (the templates keep the tag) and still count as its own;
after a retag, a Pod pinned to the new, never-judged digest is judged and refused, and so is
one whose tag the pinning webhook could not pin. An AccountabilityException for a Deployment
reaches the ReplicaSet and Pods its controller creates, and nothing else (not another
workload's Pods pinned to the digest it admitted). An update that drops a label a policy
requires is judged; other label changes are not. A meshed Deployment (a real mutating webhook
adds a proxy to its Pods) keeps scaling after a policy tightens: only what its Pods run beyond
the template is judged, and so is only the container ``kubectl debug`` adds. A StatefulSet's Pod
below its rollout's partition, deleted, comes back at the current revision after a policy
tightens.

The webhook runs as the chart's ServiceAccount with the chart's RBAC (``chart_identity``), so
the owner reads it makes are the ones the chart grants.
"""

from __future__ import annotations

import json
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
    latest,
    pod,
    policy,
    refused,
    running_stack,
    tag,
)
from chart_identity import chart_webhook_kubeconfig, delete_chart_rbac
from mesh_injector import INJECT_LABEL, mesh_injector

from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.ledger import Ledger

SYSTEM = "affidavit-e2e-update"
NS = "adm-update"
POLICY = "adm-update-baseline"
#: A mesh's proxy and a debugging image: registries no policy covers (never contacted).
PROXY = "mesh.example/proxy/envoy:1.31.2"
DEBUG = "tools.example/debug/busybox:1.37"


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo, releases: Releases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-update")
    identity = chart_webhook_kubeconfig(control_plane, SYSTEM, work)
    try:
        with running_stack(
            control_plane, releases.registry_host, work, SYSTEM, webhook_kubeconfig=identity
        ) as running:
            running.kubectl("create", "namespace", NS)
            apply_and_sync(running, baseline(releases))
            try:
                yield running
            finally:
                running.kubectl("delete", "accountabilitypolicy", POLICY, "--ignore-not-found")
                running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")
    finally:
        delete_chart_rbac(control_plane, SYSTEM)


def baseline(releases: Releases, approvals: int = 1) -> dict[str, Any]:
    spec = {
        "require": {
            "provenance": {"required": True},
            "tiers": {"critical": {"independentApprovals": approvals}},
            "consistentRevision": True,
        }
    }
    return policy(POLICY, releases.registry_host, releases.public_pem, **spec)


def objects(stack: ClusterStack, kind: str, app: str) -> list[dict[str, Any]]:
    out = stack.kubectl("get", kind, "-n", NS, "-l", f"app={app}", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def pod_names(stack: ClusterStack, app: str) -> set[str]:
    return {p["metadata"]["name"] for p in objects(stack, "pods", app)}


def refusals(stack: ClusterStack, app: str) -> list[str]:
    """Denials in the ledger, and FailedCreate Events, about the workload ``app`` and its children."""
    ledger = Ledger(stack.ledger_url)
    try:
        denied = [
            f"{r.kind}/{r.name}"
            for r in ledger.query(namespace=NS, outcome="denied", limit=None)
            if r.name.startswith(app)
        ]
    finally:
        ledger.close()
    events = stack.kubectl(
        "get", "events", "-n", NS, "--field-selector", "reason=FailedCreate", "-o", "json"
    ).stdout  # fmt: skip
    failed = [
        f"event {e['involvedObject']['kind']}/{e['involvedObject']['name']}: {e['message']}"
        for e in json.loads(events)["items"]
        if e["involvedObject"]["name"].startswith(app)
    ]
    return denied + failed


def owned_by(obj: dict[str, Any], owner: dict[str, Any], uid: str | None = None) -> dict[str, Any]:
    """``obj`` claiming ``owner`` as its controller (with ``uid``, or the owner's real one)."""
    meta = owner["metadata"]
    obj["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": meta["name"],
            "uid": uid or meta["uid"],
            "controller": True,
        }
    ]
    return obj


def get(stack: ClusterStack, kind: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(
        stack.kubectl("get", kind, name, "-n", NS, "-o", "json").stdout
    )
    return obj


def test_a_tightened_policy_does_not_break_what_was_admitted(
    stack: ClusterStack, releases: Releases
) -> None:
    reviewed, late = releases.reviewed, releases.late
    app = "ledger-api"
    # By tag, so the pinning webhook makes every Pod run TAG@digest while the templates say TAG.
    image = tag(releases, "update-1", reviewed.digest)
    pinned = f"{image}@{reviewed.digest}"
    stack.apply(deployment(app, NS, image))
    assert latest(stack, NS, "Deployment", app).outcome == "allowed"
    first = wait_for(lambda: pod_names(stack, app), "the first Pod")
    apply_and_sync(stack, baseline(releases, approvals=2))
    try:
        # Tightened: the same image in a new Deployment is refused now.
        refused(stack, stack.apply(deployment("probe", NS, image), check=False))

        stack.kubectl("scale", "deployment", app, "-n", NS, "--replicas=3")
        scaled = wait_for(lambda: len(p := pod_names(stack, app)) == 3 and p, "3 Pods")

        stack.kubectl("rollout", "restart", "deployment", app, "-n", NS)
        wait_for(
            lambda: len(objects(stack, "replicasets", app)) == 2 and pod_names(stack, app) - scaled,
            "the restart's ReplicaSet and its first Pod",
        )

        gone = sorted(first)[0]
        stack.kubectl("delete", "pod", gone, "-n", NS, "--wait=false")
        wait_for(
            lambda: gone not in (p := pod_names(stack, app)) and len(p) >= 4,
            "the ReplicaSet to replace the deleted Pod",
        )
        assert refusals(stack, app) == []
        assert {
            c["image"] for p in objects(stack, "pods", app) for c in p["spec"]["containers"]
        } == {pinned}

        # A new image is a new rollout: judged, and refused.
        new_image = stack.kubectl(
            "set", "image", f"deployment/{app}", f"api={late.image}", "-n", NS, check=False
        )
        assert refused(stack, new_image).images[0].ref == late.image

        # Claims of ownership are checked on the API server, never believed.
        rs = objects(stack, "replicasets", app)[0]
        other = owned_by(pod("ledger-api-forged", NS, late.image), rs)
        refused(stack, stack.apply(other, check=False))
        forged = owned_by(pod("ledger-api-forged", NS, image), rs, uid=rs["metadata"]["uid"][::-1])
        refused(stack, stack.apply(forged, check=False))
        # The same images as the admitted owner's template, pinned to the digest that was
        # judged: fine.
        same = owned_by(pod("ledger-api-twin", NS, image), rs)
        assert stack.apply(same).stdout.strip() == "pod/ledger-api-twin created"
        assert get(stack, "pod", "ledger-api-twin")["spec"]["containers"][0]["image"] == pinned
        # Retag: the tag's new digest was never judged, so a Pod pinned to it is judged (and
        # refused), not admitted on the old decision.
        tag(releases, "update-1", late.digest)
        retagged = owned_by(pod("ledger-api-retagged", NS, image), rs)
        decision = refused(stack, stack.apply(retagged, check=False))
        assert [(i.ref, i.digest) for i in decision.images] == [
            (f"{image}@{late.digest}", late.digest)
        ]
    finally:
        apply_and_sync(stack, baseline(releases))


def test_an_exception_for_a_deployment_reaches_what_it_creates(
    stack: ClusterStack, releases: Releases
) -> None:
    late = releases.late
    app = "login-hotfix"
    hotfix = exception(app, NS, [late.image], from_now(hours=4))
    hotfix["spec"]["workloads"] = [{"kind": "Deployment", "name": app}]
    apply_and_sync(stack, hotfix)
    try:
        stack.apply(deployment(app, NS, late.image))
        assert latest(stack, NS, "Deployment", app).outcome == "excepted"
        wait_for(lambda: pod_names(stack, app), "the excepted Deployment's Pod")
        (rs,) = objects(stack, "replicasets", app)
        assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
        assert refusals(stack, app) == []

        # The exception reaches what the Deployment creates, not whatever claims to belong to
        # it: a Pod (Deployments create ReplicaSets, not Pods), a ReplicaSet with another image.
        owner = get(stack, "deployment", app)
        stray = owned_by(pod("login-hotfix-stray", NS, late.image), owner)
        refused(stack, stack.apply(stray, check=False))
        rogue = deployment("login-hotfix-rogue", NS, late.image) | {"kind": "ReplicaSet"}
        rogue["spec"]["template"]["spec"]["containers"].append(
            {"name": "sidecar", "image": releases.reviewed.image}
        )
        refused(stack, stack.apply(owned_by(rogue, owner), check=False))
        # A ReplicaSet of exactly the Deployment's images is what the exception admitted.
        twin = deployment("login-hotfix-twin", NS, late.image) | {"kind": "ReplicaSet"}
        twin["spec"]["replicas"] = 0
        created = stack.apply(owned_by(twin, owner))
        assert created.stdout.strip() == "replicaset.apps/login-hotfix-twin created"
    finally:
        delete_and_sync(stack, "accountabilityexception", app, NS)


def test_a_tag_the_pinning_webhook_could_not_pin_is_judged_not_admitted_on_its_owner(
    stack: ClusterStack, releases: Releases
) -> None:
    """A Pod's pin is best effort (a lookup that fails leaves the tag as written), and the
    request chooses whether it fails: an imagePullSecret that holds no registry credentials
    makes the pinning webhook's lookup *missing evidence* (the kubelet only skips it and pulls
    anyway). Such a Pod claiming its real ReplicaSet used to be admitted on the old decision,
    unpinned, after a retag: the kubelet then pulled a digest nobody judged. It is judged now."""
    reviewed, late = releases.reviewed, releases.late
    app = "unpinned-api"
    image = tag(releases, "update-unpinned", reviewed.digest)
    stack.apply(deployment(app, NS, image))
    assert latest(stack, NS, "Deployment", app).outcome == "allowed"
    wait_for(lambda: pod_names(stack, app), "the first Pod")
    (rs,) = objects(stack, "replicasets", app)
    stack.kubectl(
        "create", "secret", "generic", "no-registry-credentials", "-n", NS,
        "--from-literal=token=x",
    )  # fmt: skip
    tag(releases, "update-unpinned", late.digest)

    sneaky = owned_by(pod("unpinned-api-sneaky", NS, image), rs)
    sneaky["spec"]["imagePullSecrets"] = [{"name": "no-registry-credentials"}]
    decision = refused(stack, stack.apply(sneaky, check=False))
    assert [(i.ref, v.rule) for i in decision.images for v in decision.violations] == [
        (image, "evidence.missing")
    ]
    # Without the sabotage the same Pod is pinned to the new digest, judged and refused too.
    plain = owned_by(pod("unpinned-api-plain", NS, image), rs)
    assert refused(stack, stack.apply(plain, check=False)).images[0].digest == late.digest
    assert refusals(stack, app) == ["Pod/unpinned-api-sneaky", "Pod/unpinned-api-plain"]


def test_an_exception_for_one_deployment_does_not_admit_its_digest_for_another(
    stack: ClusterStack, releases: Releases
) -> None:
    """Two Deployments run one tag. After a retag to an unreviewed digest, an exception admits
    one of them (by workload); its Pods run, pinned to that digest. The other's Pods, pinned to
    the same digest when its ReplicaSet replaces one, used to be admitted on the exception's
    decision (the ledger counted any admitting decision for the tag and digest): they are
    judged now, and refused."""
    reviewed, late = releases.reviewed, releases.late
    image = tag(releases, "update-shared", reviewed.digest)
    stack.apply(deployment("shared-bystander", NS, image))
    (first,) = wait_for(lambda: pod_names(stack, "shared-bystander"), "the bystander's Pod")

    tag(releases, "update-shared", late.digest)
    hotfix = exception("shared-hotfix", NS, [image], from_now(hours=4))
    hotfix["spec"]["workloads"] = [{"kind": "Deployment", "name": "shared-hotfix"}]
    apply_and_sync(stack, hotfix)
    try:
        stack.apply(deployment("shared-hotfix", NS, image))
        assert latest(stack, NS, "Deployment", "shared-hotfix").outcome == "excepted"
        (made,) = wait_for(lambda: objects(stack, "pods", "shared-hotfix"), "the hotfix's Pod")
        assert made["spec"]["containers"][0]["image"] == f"{image}@{late.digest}"
        assert refusals(stack, "shared-hotfix") == []

        stack.kubectl("delete", "pod", first, "-n", NS, "--wait=false")
        wait_for(lambda: refusals(stack, "shared-bystander"), "the replacement to be refused")
        assert first not in pod_names(stack, "shared-bystander")
        assert pod_names(stack, "shared-bystander") == set()
    finally:
        delete_and_sync(stack, "accountabilityexception", "shared-hotfix", NS)


def test_an_update_that_drops_the_owner_label_a_policy_requires_is_judged(
    stack: ClusterStack, releases: Releases
) -> None:
    """``require.ownerLabel`` names who answers for a workload. An UPDATE that changes no image
    is not judged (scale, restart, labels), so removing the label right after the admission
    used to pass: the workload ran with no owner. Dropping a label a policy requires is
    judged now; other label changes stay routine, even on a workload admitted before the
    policy asked for the label."""
    owner_key = "affidavit.dev/owner"
    reviewed = releases.reviewed
    older = deployment("owned-before", NS, reviewed.image)
    stack.apply(older)
    owned = deployment("owned-api", NS, reviewed.image)
    owned["metadata"]["labels"] = {owner_key: "payments", "tier": "web"}
    strict = baseline(releases)
    strict["spec"]["require"]["ownerLabel"] = owner_key
    apply_and_sync(stack, strict)
    try:
        stack.apply(owned)
        assert latest(stack, NS, "Deployment", "owned-api").outcome == "allowed"
        stack.kubectl("label", "deployment", "owned-api", "-n", NS, "tier-", "team=payments")
        stack.kubectl("label", "deployment", "owned-before", "-n", NS, "team=payments")
        assert refusals(stack, "owned-") == []

        dropped = stack.kubectl(
            "label", "deployment", "owned-api", "-n", NS, f"{owner_key}-", check=False
        )
        decision = refused(stack, dropped)
        assert (decision.operation, [v.rule for v in decision.violations]) == (
            "UPDATE",
            ["labels.owner"],
        )
        emptied = stack.kubectl(
            "label", "deployment", "owned-api", "-n", NS, f"{owner_key}=", "--overwrite",
            check=False,
        )  # fmt: skip
        assert [v.rule for v in refused(stack, emptied).violations] == ["labels.owner"]
        labels = get(stack, "deployment", "owned-api")["metadata"]["labels"]
        assert labels[owner_key] == "payments"
    finally:
        apply_and_sync(stack, baseline(releases))


def test_a_meshed_workload_keeps_scaling_after_a_policy_tightens(
    stack: ClusterStack, releases: Releases, tmp_path: Path
) -> None:
    """A service mesh's injector adds its proxy to every Pod it is asked about, so a meshed
    Deployment's Pods never ran exactly their template: they were judged whole, and after a
    policy tightened every new replica was refused (scale, restart, a drained node). A Pod that
    runs its verified owner's images and more is now judged on the more alone; so is the
    ephemeral container ``kubectl debug`` adds. An extra image that fails is still refused,
    and the denial names only it."""
    reviewed, late = releases.reviewed, releases.late
    app = "mesh-api"
    image = tag(releases, "update-mesh", reviewed.digest)
    pinned = f"{image}@{reviewed.digest}"
    meshed = deployment(app, NS, image)
    meshed["spec"]["template"]["metadata"]["labels"][INJECT_LABEL] = "true"
    with mesh_injector(stack, NS, PROXY, tmp_path) as injected:
        stack.apply(meshed)
        assert latest(stack, NS, "Deployment", app).outcome == "allowed"
        (first,) = wait_for(lambda: objects(stack, "pods", app), "the first meshed Pod")
        assert [c["image"] for c in first["spec"]["containers"]] == [pinned, PROXY]
        apply_and_sync(stack, baseline(releases, approvals=2))
        try:
            stack.kubectl("scale", "deployment", app, "-n", NS, "--replicas=3")
            pods = wait_for(lambda: len(p := objects(stack, "pods", app)) == 3 and p, "3 Pods")
            assert refusals(stack, app) == []
            # the API server really called the injector for the ReplicaSet's Pods
            made_by_rs = [
                r for r in injected
                if r["request"]["object"]["metadata"].get("generateName", "").startswith(app)
            ]  # fmt: skip
            assert len(made_by_rs) >= 3
            for made in pods:
                assert {c["image"] for c in made["spec"]["containers"]} == {pinned, PROXY}
                decision = latest(stack, NS, "Pod", made["metadata"]["name"])
                assert decision.outcome != "denied"
                assert [i.ref for i in decision.images] == [PROXY]
                assert decision.snapshot is not None
                ((unjudged, because),) = [
                    (n.image, n.because) for n in decision.snapshot.not_judged
                ]
                assert unjudged == pinned
                assert because.startswith("runs on the admission of its owner ReplicaSet/mesh-api-")

            # kubectl debug adds an ephemeral container: judged alone, the Pod keeps running.
            name = first["metadata"]["name"]
            stack.kubectl("debug", name, "-n", NS, f"--image={DEBUG}", "--container=dbg")
            debugged = latest(stack, NS, "Pod", name)
            assert (debugged.operation, [i.ref for i in debugged.images]) == ("UPDATE", [DEBUG])

            # The extra image is judged, not waved through: an unreviewed one is refused, and
            # the denial names it alone and says what ran on the owner's admission.
            rs = objects(stack, "replicasets", app)[0]
            rogue = owned_by(pod("mesh-api-rogue", NS, image), rs)
            rogue["spec"]["containers"].append({"name": "tool", "image": late.image})
            proc = stack.apply(rogue, check=False)
            decision = refused(stack, proc)
            assert [i.ref for i in decision.images] == [late.image]
            assert f"{pinned} run(s) on the admission of its owner ReplicaSet/" in proc.stderr
            # Without the owner's images it is no child of the owner's: judged whole.
            stray = owned_by(pod("mesh-api-stray", NS, late.image), rs)
            stray["spec"]["containers"].append({"name": "proxy", "image": PROXY})
            assert len(refused(stack, stack.apply(stray, check=False)).images) == 2
        finally:
            apply_and_sync(stack, baseline(releases))


def statefulset(name: str, image: str, partition: int = 0) -> dict[str, Any]:
    """A StatefulSet of two Pods, made in parallel (no kubelet here makes a Pod Ready)."""
    labels = {"app": name}
    template = deployment(name, NS, image)["spec"]["template"]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 2,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": template,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}},
        },
    }


def test_a_statefulset_pod_below_its_partition_comes_back_after_a_policy_tightens(
    stack: ClusterStack, releases: Releases
) -> None:
    """A canary by partition: the template moves to a new tag for ordinal 1 and up, db-0 stays
    at the current revision. A drain or a deletion of db-0 then makes the controller create it
    again from that revision, whose image is not the template's: it is the StatefulSet's Pod
    still (the revision its status names, owned by it), so a policy that tightened since does
    not leave the replica down."""
    app = "ledger-db"
    reviewed = releases.reviewed.digest
    old, new = tag(releases, "sts-old", reviewed), tag(releases, "sts-new", reviewed)
    stack.apply(statefulset(app, old))
    wait_for(lambda: pod_names(stack, app) == {f"{app}-0", f"{app}-1"}, "both Pods")
    stack.apply(statefulset(app, new, partition=1))

    def rolled() -> bool:
        images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
                  for p in objects(stack, "pods", app)}  # fmt: skip
        return images == {f"{app}-0": f"{old}@{reviewed}", f"{app}-1": f"{new}@{reviewed}"}

    wait_for(rolled, "ordinal 1 at the new revision, ordinal 0 at the current one")
    apply_and_sync(stack, baseline(releases, approvals=2))
    try:
        refused(stack, stack.apply(deployment("sts-probe", NS, old), check=False))
        first = get(stack, "pod", f"{app}-0")["metadata"]["uid"]
        stack.kubectl("delete", "pod", f"{app}-0", "-n", NS, "--wait=false")

        def back() -> bool:
            found = [p for p in objects(stack, "pods", app) if p["metadata"]["name"] == f"{app}-0"]
            return bool(found) and found[0]["metadata"]["uid"] != first

        wait_for(back, f"{app}-0 to be created again")
        assert refusals(stack, app) == []
        assert rolled()
    finally:
        apply_and_sync(stack, baseline(releases))
        stack.kubectl("delete", "statefulset", app, "-n", NS, "--wait=false")
