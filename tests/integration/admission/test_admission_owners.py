"""The owner check against a real kube-apiserver: a child is its owner's only when the owner the
child names exists on the API server with that UID, is a kind that creates the child's kind, and
its template runs exactly the child's images — a forged UID, another image, an extra image, a
non-controller reference or an owner of the wrong kind are not, except that a Pod may run more
than its ReplicaSet's template (a mesh's proxy), and the more is left to judge. A pinned child
(``TAG@sha256:D``) matches its owner's ``TAG`` only at a digest a real ledger shows admitted for
that tag in that namespace: a digest the tag moved to later, a denied decision, another
namespace's decision, no ledger or an unreachable one do not count. Owner snapshots are cached,
bounded in time and in entries, a changed template is read again, and an API server that never
answers, or forbids the read, makes the check give up (the child is then judged)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_support import Images, in_process_webhook, review
from admission_support import policy as policy_doc
from kubernetes import client

from affidavit.admission.judged import JudgedDigests
from affidavit.admission.kube import KubeApi, api_client
from affidavit.admission.owners import OwnerChain, OwnerMatch, OwnerRef, controller_ref
from affidavit.admission.server import WebhookSettings
from affidavit.envtest import ControlPlaneInfo
from affidavit.ledger import Ledger
from affidavit.policy.decision import Decision, ImageRef
from control_planes import started_control_plane

NS = "shop"
APP = "registry.example/shop/app:1"
OTHER = "registry.example/shop/unreviewed:1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneInfo]:
    """Its own control plane without a controller manager: owners here have no real children."""
    with started_control_plane(
        tmp_path_factory.mktemp("cp"), with_controller_manager=False
    ) as info:
        core = client.CoreV1Api(api_client(info.kubeconfig))
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        yield info


@pytest.fixture(scope="module")
def apps(cluster: ControlPlaneInfo) -> client.AppsV1Api:
    return client.AppsV1Api(api_client(cluster.kubeconfig))


@pytest.fixture(scope="module")
def kube(cluster: ControlPlaneInfo) -> KubeApi:
    return KubeApi(api_client(cluster.kubeconfig), owner_timeout=30)  # a loaded apiserver


def _template(name: str, images: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]},
    }


def deployment(apps: client.AppsV1Api, name: str, *images: str) -> str:
    """Create a Deployment running ``images``; its UID."""
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": _template(name, [*images]),
        },
    }
    created: Any = apps.create_namespaced_deployment(NS, body)  # type: ignore[arg-type]
    return str(created.metadata.uid)


def replica_set(owner: str, uid: str, *images: str, controller: bool = True) -> dict[str, Any]:
    """A ReplicaSet as a child claims it (never created: the check reads only the owner)."""
    ref: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner, "uid": uid}
    if controller:
        ref["controller"] = True
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": f"{owner}-5d8f", "namespace": NS, "ownerReferences": [ref]},
        "spec": {"template": _template(owner, [*images])},
    }


def test_a_child_is_its_owners_only_when_the_api_server_says_so(
    apps: client.AppsV1Api, kube: KubeApi
) -> None:
    uid = deployment(apps, "web", APP)
    owners = OwnerChain(kube)
    seen: list[str] = []
    try:

        def check(obj: dict[str, Any], *images: str, kind: str = "ReplicaSet") -> OwnerRef | None:
            return owners.verify(kind, NS, obj, images, timeout=10, outcome=seen.append)

        assert check(replica_set("web", uid, APP), APP) == OwnerRef(
            "apps", "Deployment", "web", uid
        )
        assert check(replica_set("web", "forged-uid", APP), APP) is None
        assert check(replica_set("web", uid, OTHER), OTHER) is None
        assert check(replica_set("web", uid, APP, OTHER), APP, OTHER) is None
        assert check(replica_set("web", uid, APP, controller=False), APP) is None
        assert check(replica_set("absent", uid, APP), APP) is None
        # A Deployment creates ReplicaSets, not Pods: a Pod claiming one is judged.
        assert check(replica_set("web", uid, APP), APP, kind="Pod") is None
        # Only a child with a controller owner of a creating kind is checked at all.
        assert seen == ["owners", *["not-owners"] * 4]
    finally:
        owners.close()


def test_a_burst_of_children_waits_for_the_reads_instead_of_being_judged_whole(
    apps: client.AppsV1Api, kube: KubeApi
) -> None:
    """A controller makes Pods in bursts (1, 2, 4 ... 500 at a time): with 4 reads and no
    wait, most of 40 concurrent checks came back "busy" and their Pods were judged whole,
    without their owner's lineage (a scale-up after a policy tightened was refused)."""
    uid = deployment(apps, "burst", APP)
    owners = OwnerChain(kube, workers=4)
    seen: list[str] = []
    try:
        with ThreadPoolExecutor(40) as pool:
            found = list(
                pool.map(
                    lambda _: owners.verify(
                        "ReplicaSet",
                        NS,
                        replica_set("burst", uid, APP),
                        (APP,),
                        timeout=20,
                        outcome=seen.append,
                    ),
                    range(40),
                )
            )
        assert found == [OwnerRef("apps", "Deployment", "burst", uid)] * 40
        assert seen == ["owners"] * 40
    finally:
        owners.close()


def test_controller_ref_reads_only_the_controller_of_a_creating_kind() -> None:
    rs = replica_set("web", "u1", APP)
    assert controller_ref("ReplicaSet", rs) == OwnerRef("apps", "Deployment", "web", "u1")
    assert controller_ref("Deployment", rs) is None  # nothing creates Deployments
    rs["metadata"]["ownerReferences"][0]["apiVersion"] = "example.com/v1"
    assert controller_ref("ReplicaSet", rs) is None  # a Deployment of another group
    pod = {"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "ReplicationController",
                                             "name": "rc", "uid": "u2", "controller": True}]}}  # fmt: skip
    assert controller_ref("Pod", pod) == OwnerRef("", "ReplicationController", "rc", "u2")


def test_owner_snapshots_are_cached_bounded_in_time_and_entries(
    apps: client.AppsV1Api, kube: KubeApi
) -> None:
    now = [0.0]
    owners = OwnerChain(kube, ttl=30, max_entries=1, clock=lambda: now[0])
    one, two = deployment(apps, "cache-one", APP), deployment(apps, "cache-two", APP)
    try:
        assert owners.verify(
            "ReplicaSet", NS, replica_set("cache-one", one, APP), (APP,), timeout=10
        )
        assert owners.verify(
            "ReplicaSet", NS, replica_set("cache-two", two, APP), (APP,), timeout=10
        )
        apps.delete_namespaced_deployment("cache-one", NS)
        apps.delete_namespaced_deployment("cache-two", NS)
        # cache-two is still cached; cache-one was evicted (one entry) and is read again: gone.
        assert owners.verify(
            "ReplicaSet", NS, replica_set("cache-two", two, APP), (APP,), timeout=10
        )
        assert not owners.verify(
            "ReplicaSet", NS, replica_set("cache-one", one, APP), (APP,), timeout=10
        )
        now[0] = 31.0  # expired: read again, gone
        assert not owners.verify(
            "ReplicaSet", NS, replica_set("cache-two", two, APP), (APP,), timeout=10
        )
    finally:
        owners.close()


def test_a_changed_template_is_read_again(apps: client.AppsV1Api, kube: KubeApi) -> None:
    owners = OwnerChain(kube, ttl=3600)
    uid = deployment(apps, "rolled", APP)
    try:
        assert owners.verify("ReplicaSet", NS, replica_set("rolled", uid, APP), (APP,), timeout=10)
        patch = {"spec": {"template": _template("rolled", [OTHER])}}
        apps.patch_namespaced_deployment("rolled", NS, patch)
        # The cached snapshot (APP) does not match; the fresh read (OTHER) does.
        assert owners.verify(
            "ReplicaSet", NS, replica_set("rolled", uid, OTHER), (OTHER,), timeout=10
        )
        assert not owners.verify(
            "ReplicaSet", NS, replica_set("rolled", uid, APP), (APP,), timeout=10
        )
    finally:
        owners.close()


def test_an_api_server_that_never_answers_makes_the_check_give_up(
    cluster: ControlPlaneInfo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)  # accepts connections into the backlog, never answers
    config = cluster.kubeconfig.read_text().replace(
        cluster.server, f"https://127.0.0.1:{hang.getsockname()[1]}"
    )
    kubeconfig = tmp_path / "hanging"
    kubeconfig.write_text(config)
    owners = OwnerChain(KubeApi(api_client(kubeconfig), owner_timeout=30), workers=1)
    try:
        child = replica_set("web", "u1", APP)
        seen: list[str] = []
        with caplog.at_level(logging.WARNING, logger="affidavit.admission"):
            assert owners.verify("ReplicaSet", NS, child, (APP,), timeout=0.2,
                                 outcome=seen.append) is None  # fmt: skip
            # The one read is still stuck: the next check waits for a slot within its own time,
            # no longer, and gives up
            assert owners.verify("ReplicaSet", NS, child, (APP,), timeout=0.3,
                                 outcome=seen.append) is None  # fmt: skip
        assert seen == ["timeout", "busy"]
        assert [r.getMessage() for r in caplog.records if r.name == "affidavit.admission"] == [
            f"owner check of Deployment/web (uid u1) in {NS} timed out after 0.2s",
            f"owner check of Deployment/web (uid u1) in {NS} skipped: all reads busy",
        ]
    finally:
        owners.close()
        hang.close()


def test_an_owner_the_webhook_may_not_read_makes_the_check_give_up(
    cluster: ControlPlaneInfo,
    apps: client.AppsV1Api,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    uid = deployment(apps, "unreadable", APP)
    core = client.CoreV1Api(api_client(cluster.kubeconfig))
    core.create_namespaced_service_account(
        NS, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="no-rbac"))
    )
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    status = core.create_namespaced_service_account_token("no-rbac", NS, request).status
    assert status is not None
    token = status.token
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    admin["users"] = [{"name": "no-rbac", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "no-rbac"
    kubeconfig = tmp_path / "no-rbac"
    kubeconfig.write_text(json.dumps(admin))
    owners = OwnerChain(KubeApi(api_client(kubeconfig)))
    try:
        with caplog.at_level(logging.WARNING, logger="affidavit.admission"):
            child = replica_set("unreadable", uid, APP)
            assert owners.verify("ReplicaSet", NS, child, (APP,), timeout=10) is None
        assert [r.getMessage() for r in caplog.records if r.name == "affidavit.admission"] == [
            f"owner check of Deployment/unreadable (uid {uid}) in {NS} failed: "
            f"cannot get Deployment {NS}/unreadable: 403 Forbidden"
        ]
    finally:
        owners.close()


TAG = "registry.example/shop/pinned:1"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def admission(
    n: int,
    outcome: str,
    namespace: str,
    ref: str,
    digest: str,
    *,
    kind: str = "Deployment",
    name: str = "pinned",
) -> Decision:
    return Decision(
        id=f"pin-{n}",
        time="2026-03-01T10:00:00Z",
        cluster="prod-1",
        region="eu-west-1",
        namespace=namespace,
        kind=kind,
        name=name,
        operation="CREATE",
        user="alice",
        outcome=outcome,  # type: ignore[arg-type]
        mode="Enforce",
        images=(ImageRef(ref, digest),),
    )


def test_a_pinned_child_matches_its_owners_tag_only_at_an_admitted_digest(
    apps: client.AppsV1Api, kube: KubeApi, tmp_path: Path
) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append(admission(1, "allowed", NS, TAG, D1))
    ledger.append(admission(2, "denied", NS, TAG, D2))
    ledger.append(admission(3, "allowed", "elsewhere", TAG, D2))
    uid = deployment(apps, "pinned", TAG, APP)
    owners = OwnerChain(kube, judged=JudgedDigests(ledger))
    unjudged = OwnerChain(kube)  # no ledger: a pinned child is never its owner's
    try:

        def check(chain: OwnerChain, *images: str) -> OwnerRef | None:
            return chain.verify("ReplicaSet", NS, replica_set("pinned", uid, *images), images,
                                timeout=10)  # fmt: skip

        owner = OwnerRef("apps", "Deployment", "pinned", uid)
        assert check(owners, TAG, APP) == owner  # not pinned: compared as written
        assert check(owners, f"{TAG}@{D1}", APP) == owner  # D1 was judged and admitted here
        assert check(owners, f"{TAG}@{D1}", TAG, APP) == owner
        assert check(owners, f"{TAG}@{D2}", APP) is None  # denied here, admitted elsewhere
        assert check(owners, f"{TAG}@{D1}") is None  # the owner's other image is missing
        assert check(owners, f"{APP}@{D1}", f"{TAG}@{D1}") is None  # APP@D1 was never judged
        assert check(owners, f"registry.example/shop/other:1@{D1}", APP) is None
        assert check(unjudged, f"{TAG}@{D1}", APP) is None
        # The tag moves on; the new digest is judged and admitted here: from now on, it counts.
        ledger.append(admission(4, "allowed", NS, TAG, D2))
        assert check(owners, f"{TAG}@{D2}", APP) == owner
    finally:
        owners.close()
        unjudged.close()
        ledger.close()


def test_an_excepted_digest_counts_only_for_the_workload_the_exception_admitted(
    apps: client.AppsV1Api, kube: KubeApi, tmp_path: Path
) -> None:
    """An AccountabilityException may name one workload; the decision it allowed must not
    admit that digest for every other workload running the tag in the namespace (after a
    retag, their restarted Pods ran the unreviewed digest), nor outlive the exception there."""
    d3 = "sha256:" + "3" * 64
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append(admission(1, "excepted", NS, TAG, d3, name="hotfixed"))
    ledger.append(admission(2, "allowed", NS, TAG, D1, name="bystander"))
    ledger.append(admission(3, "excepted", NS, TAG, d3, kind="Pod", name="hotfixed-debug"))
    hotfixed = deployment(apps, "hotfixed", TAG)
    bystander = deployment(apps, "bystander", TAG)

    def rs_of(owner: str, uid: str, *images: str) -> tuple[str, str]:
        body = replica_set(owner, uid, *(images or (TAG,)))
        body["metadata"]["name"] += str(len(images))
        body["spec"] |= {"replicas": 0, "selector": {"matchLabels": {"app": owner}}}
        created: Any = apps.create_namespaced_replica_set(NS, body)  # type: ignore[arg-type]
        return str(created.metadata.name), str(created.metadata.uid)

    def pod_of(rs: tuple[str, str], *images: str) -> dict[str, Any]:
        ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs[0], "uid": rs[1],
               "controller": True}  # fmt: skip
        return {"metadata": {"name": f"{rs[0]}-x", "ownerReferences": [ref]},
                "spec": _template(rs[0], [*images])["spec"]}  # fmt: skip

    owners = OwnerChain(kube, judged=JudgedDigests(ledger))
    try:

        def check(kind: str, obj: dict[str, Any], *images: str) -> OwnerRef | None:
            return owners.verify(kind, NS, obj, images, timeout=10)

        pinned = f"{TAG}@{d3}"
        # The workload the exception admitted, and what its controllers create: its own.
        assert check("ReplicaSet", replica_set("hotfixed", hotfixed, pinned), pinned)
        hotfixed_rs = rs_of("hotfixed", hotfixed)
        assert check("Pod", pod_of(hotfixed_rs, pinned), pinned)
        # Another workload of the same tag, admitted at D1: D3 was never judged for it.
        assert check("ReplicaSet", replica_set("bystander", bystander, pinned), pinned) is None
        bystander_rs = rs_of("bystander", bystander)
        assert check("Pod", pod_of(bystander_rs, pinned), pinned) is None
        assert check("Pod", pod_of(bystander_rs, f"{TAG}@{D1}"), f"{TAG}@{D1}")
        # A ReplicaSet that only claims the excepted Deployment (another template: it was
        # judged on its own) does not inherit the exception's decision.
        rogue_rs = rs_of("hotfixed", hotfixed, TAG, APP)
        assert check("Pod", pod_of(rogue_rs, pinned, APP), pinned, APP) is None
    finally:
        owners.close()
        ledger.close()


@pytest.mark.parametrize("outcome", ["warned", "audited"])
def test_a_digest_admitted_despite_violations_counts_only_for_its_own_workload(
    apps: client.AppsV1Api, kube: KubeApi, tmp_path: Path, outcome: str
) -> None:
    """Warn and Audit admit a digest whose evidence fails the policy. Another workload of the
    same tag, admitted at a digest that passed, must not have its Pods pinned to that digest
    admitted on that decision (once the policy enforces, they would run it unjudged)."""
    d4 = "sha256:" + "4" * 64
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append(admission(1, outcome, NS, TAG, d4, name=f"lenient-{outcome}"))
    lenient = deployment(apps, f"lenient-{outcome}", TAG)
    strict = deployment(apps, f"strict-{outcome}", TAG)
    owners = OwnerChain(kube, judged=JudgedDigests(ledger))
    pinned = f"{TAG}@{d4}"
    try:

        def check(owner: str, uid: str) -> OwnerRef | None:
            child = replica_set(owner, uid, pinned)
            return owners.verify("ReplicaSet", NS, child, (pinned,), timeout=10)

        assert check(f"lenient-{outcome}", lenient) is not None
        assert check(f"strict-{outcome}", strict) is None
    finally:
        owners.close()
        ledger.close()


def test_judged_digests_cache_admissions_only_and_give_up_on_an_unreachable_ledger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    judged = JudgedDigests(ledger, ttl=60, max_entries=1, clock=lambda: now[0])
    assert not judged.admitted(NS, TAG, D1)
    ledger.append(admission(1, "allowed", NS, TAG, D1))
    assert judged.admitted(NS, TAG, D1)  # a "no" is never cached: the new decision counts
    ledger.close()
    (tmp_path / "ledger.db").unlink()
    assert judged.admitted(NS, TAG, D1)  # cached
    now[0] = 61.0
    assert not judged.admitted(NS, TAG, D1)  # expired, read again: the decision is gone (an error)
    caplog.clear()

    down = JudgedDigests(
        Ledger("postgresql+psycopg://affidavit@127.0.0.1:9/none", connect_timeout=1),
        retry_interval=3600,
    )
    with caplog.at_level(logging.WARNING, logger="affidavit.admission"):
        assert not down.admitted(NS, TAG, D1)
        assert not down.admitted(NS, TAG, D1)  # backing off: the ledger is not asked again
    messages = [r.getMessage() for r in caplog.records if r.name == "affidavit.admission"]
    assert len(messages) == 1
    assert messages[0].startswith(
        f"cannot tell whether {TAG} at {D1} was admitted in {NS}: ledger database "
        "postgresql+psycopg://affidavit@127.0.0.1:9/none is unreachable: "
    )


PROXY = "mesh.example/proxy/envoy:1.31.2"


def pod_of(owner: str, uid: str, *images: str, kind: str = "ReplicaSet") -> dict[str, Any]:
    """A Pod as it claims its ReplicaSet (or another ``kind`` of owner); never created: the
    check reads only the owner."""
    ref = {"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": uid, "controller": True}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{owner}-x7k2p", "namespace": NS, "ownerReferences": [ref]},
        "spec": _template(owner, [*images])["spec"],
    }


def test_a_pod_may_run_more_than_its_owners_images_and_only_the_more_is_left_to_judge(
    apps: client.AppsV1Api, kube: KubeApi, tmp_path: Path
) -> None:
    """A mesh's injector adds its proxy to a ReplicaSet's Pods; ``kubectl debug`` adds a
    container. Such a Pod still matches its owner, with the images beyond the template as
    ``extras`` (judged by the caller), provided it runs every image of the template (a pinned
    one at an admitted digest). A ReplicaSet with more than its Deployment's images does not:
    no controller adds to a template."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append(admission(1, "allowed", NS, TAG, D1))
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "meshed"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "meshed"}},
            "template": _template("meshed", [TAG, APP]),
        },
    }
    created: Any = apps.create_namespaced_replica_set(NS, body)  # type: ignore[arg-type]
    uid = str(created.metadata.uid)
    chain = OwnerChain(kube, judged=JudgedDigests(ledger))
    try:

        def match(*images: str, owner_uid: str = uid) -> OwnerMatch | None:
            return chain.match("Pod", NS, pod_of("meshed", owner_uid, *images), images,
                               timeout=10)  # fmt: skip

        owner = OwnerRef("apps", "ReplicaSet", "meshed", uid)
        assert match(TAG, APP) == OwnerMatch(owner)
        assert match(f"{TAG}@{D1}", APP, PROXY) == OwnerMatch(owner, (PROXY,))
        assert match(PROXY, TAG, OTHER, APP) == OwnerMatch(owner, (PROXY, OTHER))
        assert match(APP, PROXY) is None  # the template's TAG is missing: not its Pod
        # pinned to a digest never admitted: judged, its lineage named for the exceptions
        assert match(f"{TAG}@{D2}", APP, PROXY) == OwnerMatch(
            owner, (PROXY,), confirmed=False, lineage=(("ReplicaSet", "meshed"),)
        )
        assert match(TAG, APP, PROXY, owner_uid="forged-uid") is None
        # verify() is the exact check: a Pod with more is not exactly its owner's
        meshed = pod_of("meshed", uid, TAG, APP, PROXY)
        assert chain.verify("Pod", NS, meshed, (TAG, APP, PROXY), timeout=10) is None
        assert chain.verify("Pod", NS, meshed, (TAG, APP), timeout=10) == owner

        dep = deployment(apps, "meshed-dep", APP)
        rs = replica_set("meshed-dep", dep, APP, PROXY)
        assert chain.match("ReplicaSet", NS, rs, (APP, PROXY), timeout=10) is None
    finally:
        chain.close()
        ledger.close()


class StallingProxy:
    """A TCP proxy in front of the API server (TLS passes through untouched) that holds what
    clients send until a moment the test sets: an API server that answers late, not never."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("https://").rsplit(":", 1)
        self._upstream = (host, int(port))
        self._until = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.server = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self, seconds: float) -> None:
        """Hold everything clients send for the next ``seconds``."""
        self._until = time.monotonic() + seconds

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self._upstream)
            threading.Thread(target=self._pump, args=(conn, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, conn, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, held: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                if held and (wait := self._until - time.monotonic()) > 0:
                    time.sleep(wait)
                dst.sendall(chunk)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _replica_set_review(owner: str, uid: str, image: str) -> dict[str, Any]:
    body = review(image, kind="ReplicaSet", namespace=NS, name=f"{owner}-5d8f", uid=f"rs-{owner}")
    body["request"]["resource"]["resource"] = "replicasets"
    body["request"]["object"]["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner, "uid": uid,
         "controller": True}
    ]  # fmt: skip
    return body


@pytest.mark.parametrize(("check_seconds", "admitted"), [(None, False), (12.0, True)])
def test_an_api_server_slower_than_the_owner_check_time_leaves_the_child_judged(
    cluster: ControlPlaneInfo,
    apps: client.AppsV1Api,
    images: Images,
    workdir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    check_seconds: float | None,
    admitted: bool,
) -> None:
    """A ReplicaSet of an admitted Deployment that runs an image without evidence (the policy
    tightened since): the API server shows its owner 2.5 s late. Under the default 2 s
    ``--owner-check-seconds`` the ReplicaSet is judged alone and denied, and the log says the
    check timed out; with 12 s (a loaded machine may add to the 2.5 s) it is admitted on its
    owner's admission, with no decision. ``affidavit_owner_checks_total`` counts either result."""
    proxy = StallingProxy(cluster.server)
    kubeconfig = tmp_path / "stalling"
    kubeconfig.write_text(cluster.kubeconfig.read_text().replace(cluster.server, proxy.server))
    bare = f"{images.bare.rsplit(':', 1)[0]}@{images.bare_digest}"
    name = f"slow-{check_seconds or 'default'}".replace(".", "-")
    uid = deployment(apps, name, bare)
    hook = in_process_webhook(
        tmp_path,
        workdir / "policies",
        images,
        kubeconfig=kubeconfig,
        budget_seconds=29,
        owner_check_seconds=check_seconds or WebhookSettings.owner_check_seconds,
    )
    hook.policy.start()
    try:
        # The namespace's labels are read (and cached) before the API server slows down.
        hook.handle(json.dumps(review(images.good, namespace=NS, uid="warm")).encode())
        proxy.stall(2.5)
        with caplog.at_level(logging.WARNING, logger="affidavit.admission"):
            answer = hook.handle(json.dumps(_replica_set_review(name, uid, bare)).encode())
        response = answer.body["response"]
        timed_out = f"owner check of Deployment/{name} (uid {uid}) in {NS} timed out after"
        logged = [r.getMessage() for r in caplog.records if r.name == "affidavit.admission"]
        checks = {
            result: hook.metrics.registry.get_sample_value(
                "affidavit_owner_checks_total", {"result": result}
            )
            for result in ("owners", "timeout")
        }
        if admitted:
            assert response["allowed"] is True and answer.decision is None
            assert "its admitted owner Deployment/" in response["auditAnnotations"]["admitted"]
            assert not any(m.startswith(timed_out) for m in logged)
            assert checks == {"owners": 1.0, "timeout": 0.0}
        else:
            assert response["allowed"] is False
            assert answer.decision is not None and answer.decision.outcome == "denied"
            assert f"{timed_out} 2s" in logged
            assert checks == {"owners": 0.0, "timeout": 1.0}  # what the alert watches
    finally:
        hook.policy.stop()
        hook.close()
        proxy.close()


def _revision(apps: client.AppsV1Api, name: str, owner: str, uid: str, image: str) -> None:
    """A ControllerRevision as the StatefulSet controller keeps one: the template, owned by
    the StatefulSet (its controller)."""
    ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": owner, "uid": uid,
           "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    template = {**_template(owner, [image]), "$patch": "replace"}
    body = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": name, "ownerReferences": [ref]},
        "data": {"spec": {"template": template}},
        "revision": 1,
    }
    apps.create_namespaced_controller_revision(NS, body)  # type: ignore[arg-type]


def _statefulset(apps: client.AppsV1Api, name: str, image: str, partition: int = 0) -> str:
    """A StatefulSet of no replicas running ``image``; its UID."""
    spec: dict[str, Any] = {
        "replicas": 0,
        "serviceName": name,
        "selector": {"matchLabels": {"app": name}},
        "template": _template(name, [image]),
    }
    if partition:
        spec["updateStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"partition": partition},
        }
    body = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": spec,
    }
    created: Any = apps.create_namespaced_stateful_set(NS, body)  # type: ignore[arg-type]
    return str(created.metadata.uid)


def test_a_statefulset_pod_of_its_current_revision_is_the_statefulsets(
    apps: client.AppsV1Api, kube: KubeApi, tmp_path: Path
) -> None:
    """A partitioned rollout: the template now runs NEW, the Pods below the partition still run
    the current revision's OLD (the controller recreates them at it after a drain). Such a Pod
    is the StatefulSet's when the API server says so: the revision is the one its status names
    as current, and the StatefulSet is that revision's controller. Its pinned image counts at a
    digest admitted for the StatefulSet, as the template's would."""
    old, new = "registry.example/shop/db:1", "registry.example/shop/db:2"
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append(admission(1, "allowed", NS, old, D1, kind="StatefulSet", name="db"))
    uid = _statefulset(apps, "db", new, partition=1)
    _revision(apps, "db-old", "db", uid, old)
    _revision(apps, "db-new", "db", uid, new)
    _revision(apps, "db-stray", "db", "another-statefulsets-uid", OTHER)

    def status(current: str) -> None:
        patch = {"status": {"replicas": 0, "currentRevision": current, "updateRevision": "db-new"}}
        apps.patch_namespaced_stateful_set_status("db", NS, patch)

    def check(*images: str, ttl: float = 0.0) -> OwnerRef | None:
        chain = OwnerChain(kube, judged=JudgedDigests(ledger), ttl=ttl)
        try:
            pod = pod_of("db", uid, *images, kind="StatefulSet")
            return chain.verify("Pod", NS, pod, images, timeout=10)
        finally:
            chain.close()

    owner = OwnerRef("apps", "StatefulSet", "db", uid)
    try:
        assert check(new) == owner
        assert check(old) is None  # no rollout in progress: the template alone
        status("db-old")
        assert check(new) == owner
        assert check(old) == owner  # below the partition: the current revision's image
        assert check(f"{old}@{D1}") == owner  # pinned at the digest admitted for the StatefulSet
        assert check(f"{old}@{D2}") is None  # a digest the tag moved to was never admitted
        assert check(OTHER) is None
        status("db-stray")  # a revision of another StatefulSet (its controller's UID) is not
        assert check(OTHER) is None
        assert check(old) is None
        status("db-gone")  # a revision that does not exist: the template alone
        assert check(new) == owner
        assert check(old) is None
    finally:
        apps.delete_namespaced_stateful_set("db", NS)
        ledger.close()


def test_a_current_revision_nobody_admitted_does_not_admit_its_pods(
    apps: client.AppsV1Api, kube: KubeApi, tmp_path: Path
) -> None:
    """A ControllerRevision is no template anyone submitted, and the webhook judges none.
    Whoever may create one (with the StatefulSet's UID as its controller: a namespace Role
    granting ``apps/*``) and write the StatefulSet's status made it current, and its Pods,
    naming a digest nobody judged, were admitted as the StatefulSet's. A revision's digest now
    counts only where an admission of this StatefulSet admitted it."""
    admitted_ref = f"registry.example/shop/db@{D1}"
    evil = f"registry.example/shop/evil@{D2}"
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append(admission(1, "allowed", NS, admitted_ref, D1, kind="StatefulSet", name="rev"))
    uid = _statefulset(apps, "rev", "registry.example/shop/db:3")
    _revision(apps, "rev-old", "rev", uid, admitted_ref)
    _revision(apps, "rev-forged", "rev", uid, evil)

    def current(name: str) -> None:
        patch = {"status": {"replicas": 0, "currentRevision": name, "updateRevision": "rev-new"}}
        apps.patch_namespaced_stateful_set_status("rev", NS, patch)

    def check(image: str) -> OwnerRef | None:
        chain = OwnerChain(kube, judged=JudgedDigests(ledger), ttl=0.0)
        try:
            pod = pod_of("rev", uid, image, kind="StatefulSet")
            return chain.verify("Pod", NS, pod, (image,), timeout=10)
        finally:
            chain.close()

    try:
        current("rev-forged")
        assert check(evil) is None  # judged on its own
        current("rev-old")
        assert check(admitted_ref) == OwnerRef("apps", "StatefulSet", "rev", uid)
    finally:
        apps.delete_namespaced_stateful_set("rev", NS)
        ledger.close()


def _pod_review(pod: dict[str, Any], uid: str) -> dict[str, Any]:
    """An AdmissionReview of ``pod``'s CREATE by the ReplicaSet controller."""
    body = review(uid=uid, namespace=NS, name=pod["metadata"]["name"])
    request = body["request"]
    request["kind"] = {"group": "", "version": "v1", "kind": "Pod"}
    request["resource"] = {"group": "", "version": "v1", "resource": "pods"}
    request["userInfo"] = {"username": "system:serviceaccount:kube-system:replicaset-controller"}
    request["object"] = pod
    return body


@pytest.mark.parametrize("separate", [False, True])
def test_an_exception_for_a_deployment_reaches_its_pods_when_no_ledger_can_confirm_their_digest(
    apps: client.AppsV1Api, images: Images, tmp_path: Path, cluster: ControlPlaneInfo,
    separate: bool,
) -> None:  # fmt: skip
    """A Deployment admitted under an AccountabilityException runs a tag; its Pods are pinned.
    With no ledger to show the pinned digest admitted (none configured, one restarted empty,
    one that cannot answer), a Pod is judged alone. It is still the Deployment's, as the API
    server shows (its ReplicaSet, that ReplicaSet's Deployment, their UIDs and templates), so
    the exception naming the Deployment reaches it, as it would through the ledger. Under
    separation of duties nobody's name is on a controller's Pod: it does not (fail closed).
    A Pod of another Deployment never does."""
    name = f"excepted-{'sep' if separate else 'plain'}"
    now = datetime.now(UTC)
    exc = {
        "apiVersion": "affidavit.dev/v1alpha1",
        "kind": "AccountabilityException",
        "metadata": {"name": f"hotfix-{name}", "namespace": NS, "creationTimestamp":
                     now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "annotations": {"affidavit.dev/requested-by": "olga"}},
        "spec": {"images": [f"{images.host}/*"], "workloads": [{"kind": "Deployment", "name": name}],
                 "reason": "outage", "incidentId": "INC-9", "owner": "olga",
                 "approvers": ["victor"],
                 "expiresAt": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }  # fmt: skip
    pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAtest\n-----END PUBLIC KEY-----\n"
    extra = {"exceptions": {"separateRequester": True}} if separate else {}
    strict = policy_doc(f"owners-{name}", [f"{images.host}/*"], pem, **extra)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(yaml.safe_dump_all([strict, exc]))

    def family(deployment_name: str) -> tuple[str, str]:
        """A Deployment running the bare tag and its ReplicaSet (its controller); the RS's name
        and UID."""
        dep_uid = deployment(apps, deployment_name, images.bare)
        rs = replica_set(deployment_name, dep_uid, images.bare)
        rs["spec"] |= {"replicas": 0, "selector": {"matchLabels": {"app": deployment_name}}}
        del rs["metadata"]["namespace"]
        created: Any = apps.create_namespaced_replica_set(NS, rs)  # type: ignore[arg-type]
        return str(created.metadata.name), str(created.metadata.uid)

    hook = in_process_webhook(tmp_path, policies, images, kubeconfig=cluster.kubeconfig,
                              budget_seconds=29)  # fmt: skip
    hook.policy.start()
    pinned = f"{images.bare}@{images.bare_digest}"
    try:
        rs_name, rs_uid = family(name)
        answer = hook.handle(
            json.dumps(_pod_review(pod_of(rs_name, rs_uid, pinned), "p1")).encode()
        )
        decision = answer.decision
        assert decision is not None  # judged (no ledger confirms the digest), not waved through
        if separate:
            assert decision.outcome == "denied"
        else:
            assert decision.outcome == "excepted", decision.violations
            assert decision.exception == f"{NS}/hotfix-{name}"
        other_rs, other_uid = family(f"{name}-other")
        stranger = pod_of(other_rs, other_uid, pinned)
        answer = hook.handle(json.dumps(_pod_review(stranger, "p2")).encode())
        assert answer.decision is not None and answer.decision.outcome == "denied"
    finally:
        hook.policy.stop()
        hook.close()
