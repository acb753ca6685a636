"""The webhook's Kubernetes side against a real kube-apiserver: the operator's ConfigMap is
watched into the policy index (edits take effect, a broken edit or a deleted ConfigMap keeps the
last index), namespace labels are read for namespaceSelector, and imagePullSecrets are read as
real Secret objects and turned into registry credentials."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admission_support import policy
from kubernetes import client

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
