"""The webhook's Kubernetes side against a real kube-apiserver: the operator's ConfigMap is
watched into the policy index (edits take effect, a broken edit or a deleted ConfigMap keeps the
last index), namespace labels are read for namespaceSelector, and imagePullSecrets are read as
real Secret objects and turned into registry credentials."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_support import policy
from kubernetes import client

from affidavit.admission.acting import ACTED_AS, ACTS_AS, UNKNOWN, Acting, acting_attributes
from affidavit.admission.kube import KubeApi, api_client
from affidavit.admission.policy_source import ConfigMapPolicySource, NamespaceLabels
from affidavit.admission.resolve import secret_credentials
from affidavit.attestations.registry import Credentials
from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.errors import InputError
from affidavit.policy.index import PolicyIndex
from control_planes import started_control_plane

PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAtest\n-----END PUBLIC KEY-----\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneInfo]:
    """Its own control plane: this module reads back every object it lists."""
    with started_control_plane(
        tmp_path_factory.mktemp("cp"), with_controller_manager=False
    ) as info:
        yield info


@pytest.fixture(scope="module")
def core(cluster: ControlPlaneInfo) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(cluster.kubeconfig))


@pytest.fixture(scope="module")
def kube(cluster: ControlPlaneInfo) -> KubeApi:
    return KubeApi(api_client(cluster.kubeconfig))


def _index(*names: str) -> str:
    return PolicyIndex.from_objects([policy(n, ["*"], PEM) for n in names], [], []).to_json()


def _names(source: ConfigMapPolicySource) -> list[str]:
    index = source.current()
    return [p.name for p in index.policies] if index is not None else []


def test_configmap_is_watched_and_the_last_good_index_is_kept(
    core: client.CoreV1Api, kube: KubeApi
) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="affidavit")))
    source = ConfigMapPolicySource(kube, "affidavit", retry_seconds=0.2, watch_seconds=5)
    source.start()
    try:
        wait_for(lambda: source.last_error is not None, "the missing ConfigMap reported")
        assert source.current() is None
        assert source.last_error == (
            "ConfigMap affidavit/affidavit-policy-index does not exist (is the operator running?)"
        )
        cm = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="affidavit-policy-index"),
            data={"index.json": _index("baseline")},
        )
        core.create_namespaced_config_map("affidavit", cm)
        wait_for(lambda: _names(source) == ["baseline"], "the baseline index")
        core.patch_namespaced_config_map(
            "affidavit-policy-index", "affidavit", {"data": {"index.json": _index("a", "b")}}
        )
        wait_for(lambda: _names(source) == ["a", "b"], "the index of a and b")
        core.patch_namespaced_config_map(
            "affidavit-policy-index", "affidavit", {"data": {"index.json": "{broken"}}
        )
        wait_for(lambda: source.last_error is not None, "the broken index reported")
        assert source.last_error.startswith(
            "ConfigMap affidavit/affidavit-policy-index key index.json is not a policy index: "
        )
        assert _names(source) == ["a", "b"]
        core.delete_namespaced_config_map("affidavit-policy-index", "affidavit")
        wait_for(
            lambda: source.last_error == "ConfigMap affidavit/affidavit-policy-index was deleted",
            "the deletion reported",
        )
        assert _names(source) == ["a", "b"]
    finally:
        source.stop()


def test_namespace_labels_are_read_and_cached(core: client.CoreV1Api, kube: KubeApi) -> None:
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name="shop", labels={"tier": "prod"}))
    )
    now = [0.0]
    labels = NamespaceLabels(kube, ttl=30, clock=lambda: now[0])
    assert labels.labels("shop") == {"tier": "prod", "kubernetes.io/metadata.name": "shop"}
    core.patch_namespace("shop", {"metadata": {"labels": {"tier": "dev"}}})
    assert labels.labels("shop")["tier"] == "prod"  # cached
    now[0] = 31.0
    assert labels.labels("shop")["tier"] == "dev"
    assert labels.labels("missing") == {"kubernetes.io/metadata.name": "missing"}


def test_pull_secrets_become_registry_credentials(core: client.CoreV1Api, kube: KubeApi) -> None:
    config = {
        "auths": {"registry.example:5000": {"auth": base64.b64encode(b"bob:s3cret").decode()}}
    }
    core.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="pull"),
            type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
        ),
    )
    core.create_namespaced_secret(
        "default",
        client.V1Secret(metadata=client.V1ObjectMeta(name="opaque"), string_data={"a": "b"}),
    )
    secret: Any = kube.read_secret("default", "pull")
    assert secret_credentials(secret, where="default/pull") == {
        "registry.example:5000": Credentials("bob", "s3cret")
    }
    assert kube.read_secret("default", "absent") is None
    opaque: Any = kube.read_secret("default", "opaque")
    with pytest.raises(InputError) as e:
        secret_credentials(opaque, where="default/opaque")
    assert str(e.value).startswith(
        "imagePullSecret default/opaque has type 'Opaque' without registry credentials"
    )


def test_kubeconfig_errors_are_actionable(tmp_path: Path) -> None:
    from affidavit.errors import ClusterError

    with pytest.raises(ClusterError) as e:
        api_client(tmp_path / "nope.yaml")
    # One message for the webhook, the operator and the CLI (affidavit.kubeconfig).
    assert e.value.message.startswith(
        f"cannot load Kubernetes credentials from {tmp_path / 'nope.yaml'}: "
    )
    assert e.value.hint == "pass --kubeconfig FILE, or run inside a pod with a service account"


def test_stop_interrupts_an_open_watch(core: client.CoreV1Api, kube: KubeApi) -> None:
    """A stopping webhook must not wait for the next event (or the watch's server-side timeout)
    on its policy ConfigMap: ``stop`` shuts the open watch down and its thread ends."""
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="stopping")))
    cm = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="affidavit-policy-index"),
        data={"index.json": _index("baseline")},
    )
    core.create_namespaced_config_map("stopping", cm)
    source = ConfigMapPolicySource(kube, "stopping", watch_seconds=600)
    source.start()
    try:
        wait_for(lambda: _names(source) == ["baseline"], "the baseline index")
    finally:
        source.stop()

    def watching() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "affidavit-policy-watch"]

    # stop() waits a few seconds for the thread; a loaded machine may take longer, but never
    # the watch's 600 s: a watch that stop() did not shut down outlives this wait
    wait_for(lambda: not watching(), "the policy watch thread to end after stop()", 60)


class _FreezingRelay:
    """A TCP relay on loopback to the API server whose open connections can be frozen: their
    bytes stop in both directions and neither side is closed, as when an API server node is lost
    or a load balancer fails over. Connections made after a freeze are relayed as usual."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen: set[int] = set()  # generations frozen
        self.generation = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.frozen.add(self.generation)
        self.generation += 1

    def close(self) -> None:
        for s in [self.listener, *self.sockets]:
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            self.sockets += [near, far]
            generation = self.generation
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b, generation), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, generation: int) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            while generation in self.frozen:  # held: nothing passes, nothing is closed
                time.sleep(0.1)
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            try:
                sink.sendall(data)
            except OSError:
                return


def test_a_watch_whose_connection_dies_silently_is_replaced(
    core: client.CoreV1Api, cluster: ControlPlaneInfo, tmp_path: Path
) -> None:
    """The watch of the index ConfigMap had no read timeout: on a connection that died without
    closing it waited for ever, and the webhook enforced an old index (a revoked exception
    still admitting, a new policy never enforced) while it reported ready. Now a watch silent
    past its server-side timeout is given up and the ConfigMap listed again."""
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="frozen")))
    cm = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="affidavit-policy-index"),
        data={"index.json": _index("baseline")},
    )
    core.create_namespaced_config_map("frozen", cm)
    server = urllib.parse.urlsplit(cluster.server)
    assert server.hostname is not None and server.port is not None
    relay = _FreezingRelay((server.hostname, server.port))
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{relay.port}"
    relayed = tmp_path / "relayed.kubeconfig"
    relayed.write_text(yaml.safe_dump(config))
    source = ConfigMapPolicySource(
        KubeApi(api_client(relayed), request_timeout=2.0), "frozen", retry_seconds=0.2,
        watch_seconds=2,
    )  # fmt: skip
    source.start()
    try:
        wait_for(lambda: _names(source) == ["baseline"], "the baseline index")
        time.sleep(0.5)  # the watch is open on the relayed connection
        relay.freeze()
        core.patch_namespaced_config_map(
            "affidavit-policy-index", "frozen", {"data": {"index.json": _index("tightened")}}
        )
        # the watch's 2 s, its 10 s of slack, a new connection and a list
        wait_for(lambda: _names(source) == ["tightened"], "the index edited meanwhile", 60)
    finally:
        source.stop()
        relay.close()


def _oncall_may_act_as_deployer(cluster: ControlPlaneInfo) -> None:
    """In namespace ``acting``: the group ``oncall`` may impersonate ServiceAccount ``deployer``
    (what the built-in ``edit`` role grants for every ServiceAccount of its namespace)."""
    rbac = client.RbacAuthorizationV1Api(api_client(cluster.kubeconfig))
    core = client.CoreV1Api(api_client(cluster.kubeconfig))
    meta = client.V1ObjectMeta
    with contextlib.suppress(client.ApiException):
        core.create_namespace(client.V1Namespace(metadata=meta(name="acting")))
    with contextlib.suppress(client.ApiException):
        rule = client.V1PolicyRule(
            api_groups=[""],
            resources=["serviceaccounts"],
            verbs=["impersonate"],
            resource_names=["deployer"],
        )
        rbac.create_namespaced_role(
            "acting", client.V1Role(metadata=meta(name="act-as-deployer"), rules=[rule])
        )
        oncall = client.RbacV1Subject(
            api_group="rbac.authorization.k8s.io", kind="Group", name="oncall"
        )
        ref = client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="Role", name="act-as-deployer"
        )
        binding = client.V1RoleBinding(
            metadata=meta(name="act-as-deployer"), role_ref=ref, subjects=[oncall]
        )
        rbac.create_namespaced_role_binding("acting", binding)


def test_the_api_server_says_who_may_act_as_a_deployer(
    cluster: ControlPlaneInfo, kube: KubeApi
) -> None:
    """``separateRequester``'s question, asked with real SubjectAccessReviews, both ways: bob in
    ``oncall`` may act as the deploy ServiceAccount; bob without his groups and alice may not;
    the deployer may act as a requester (it wrote the exception as the account and deploys as
    itself); a requester whose groups were not stamped (or lack ``system:authenticated``, which
    the API server gives every authenticated name) counts as the deployer."""
    _oncall_may_act_as_deployer(cluster)
    deployer = "system:serviceaccount:acting:deployer"
    authenticated = "system:authenticated"
    (impersonate, _token) = acting_attributes(deployer)
    assert kube.review_access("bob", ("oncall", authenticated), impersonate)
    assert not kube.review_access("bob", (authenticated,), impersonate)
    acting = Acting(kube)
    requesters = [
        ("bob", ("oncall", authenticated)),
        ("alice", (authenticated,)),
        (deployer, None),  # the deployer is no requester of its own
        ("bob", ("oncall", authenticated)),
    ]
    assert acting.who_counts_as(deployer, (authenticated,), requesters) == (("bob", ACTS_AS),)
    # remembered: asked again without I/O; a question not asked yet needs I/O
    assert acting.who_counts_as(deployer, (authenticated,), requesters, remembered_only=True) == (
        ("bob", ACTS_AS),
    )
    carol = [("carol", (authenticated,))]
    assert acting.who_counts_as(deployer, (), carol, remembered_only=True) is None
    # the other way, for a ServiceAccount requester: bob (in oncall) deploys as himself an
    # exception he wrote as the account
    assert acting.who_counts_as(
        "bob", ("oncall", authenticated), [(deployer, (authenticated,))]
    ) == ((deployer, ACTED_AS),)
    # not known: no groups stamped, or groups without system:authenticated (a forged stamp)
    for groups in (None, (), ("oncall",)):
        assert acting.who_counts_as(deployer, (authenticated,), [("carol", groups)]) == (
            ("carol", UNKNOWN),
        )
    # a user is impersonated by name (cluster-scoped): nobody here may
    assert acting.who_counts_as("rita", (authenticated,), requesters[:2]) == ()


def test_an_api_server_that_does_not_answer_counts_as_unknown(
    cluster: ControlPlaneInfo, tmp_path: Path
) -> None:
    """Fail closed: the exception then admits nothing for this deployer; the missing answer is
    remembered briefly (not asked again at every review), and past the review's deadline no
    question is asked."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    acting = Acting(KubeApi(api_client(dead)), timeout=1.0)
    deployer = "system:serviceaccount:acting:deployer"
    alice = [("alice", ("system:authenticated",))]
    assert acting.who_counts_as(deployer, (), alice) == (("alice", UNKNOWN),)
    assert acting.who_counts_as(deployer, (), alice, remembered_only=True) == (("alice", UNKNOWN),)
    late = Acting(KubeApi(api_client(cluster.kubeconfig)))
    past = time.monotonic() - 1
    assert late.who_counts_as(deployer, (), alice, deadline=past) == (("alice", UNKNOWN),)
