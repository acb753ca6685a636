"""The operator's Kubernetes API access: one client, a few verbs, errors wrapped where they enter.

kopf watches the CRDs through its own aiohttp client; everything the operator *writes*
(the policy-index ConfigMap, object status, the TLS Secret, the webhook configuration's
``caBundle``, Events) goes through the official ``kubernetes`` client built here from the same
kubeconfig (or the in-cluster service account). Each helper does exactly the verbs the Helm
chart's RBAC grants, so a missing permission shows up as a ``ClusterError`` naming the verb.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import kopf
import urllib3
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from affidavit.errors import ClusterError
from affidavit.kubeconfig import api_client
from affidavit.names import GROUP, VERSION

PLURALS = {
    "AccountabilityPolicy": "accountabilitypolicies",
    "RegionPolicy": "regionpolicies",
    "AccountabilityException": "accountabilityexceptions",
}

T = TypeVar("T")


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    generation: int
    resourceVersion: str
    annotations: dict[str, str]
    labels: dict[str, str]


class KubeObject(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]
    status: dict[str, Any]


@dataclass(frozen=True)
class Kube:
    """The API groups the operator uses, sharing one authenticated ``ApiClient``."""

    api: Any  # kubernetes.client.ApiClient

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    @property
    def admission(self) -> Any:
        return client.AdmissionregistrationV1Api(self.api)

    @property
    def apis(self) -> Any:
        return client.ApisApi(self.api)

    def close(self) -> None:
        self.api.close()


def connect(kubeconfig: Path | None) -> Kube:
    """A client from ``kubeconfig``, or from the pod's service account when it is None."""
    return Kube(api=api_client(kubeconfig))


def call(what: str, fn: Callable[[], T]) -> T:
    """Run one API call; turn ``ApiException`` into a ``ClusterError`` naming the call."""
    try:
        return fn()
    except ApiException as e:
        raise ClusterError(f"Kubernetes API call failed: {what}: {e.status} {e.reason}") from e
    except urllib3.exceptions.HTTPError as e:
        raise ClusterError(
            f"Kubernetes API unreachable: {what}: {e}",
            hint="check that the kube-apiserver is up and the kubeconfig points at it",
        ) from e


def is_not_found(e: BaseException) -> bool:
    cause = e.__cause__ if isinstance(e, ClusterError) else e
    return isinstance(cause, ApiException) and cause.status == 404


def is_conflict(e: BaseException) -> bool:
    cause = e.__cause__ if isinstance(e, ClusterError) else e
    return isinstance(cause, ApiException) and cause.status in (409, 422)


def list_custom(kube: Kube, kind: str) -> list[KubeObject]:
    """Every object of one Affidavit kind, cluster-wide."""
    plural = PLURALS[kind]
    result: Mapping[str, Any] = call(
        f"list {plural}.{GROUP}",
        lambda: kube.custom.list_cluster_custom_object(GROUP, VERSION, plural),
    )
    items: list[KubeObject] = list(result.get("items", []))
    for item in items:
        item.setdefault("kind", kind)
    return items


def patch_status(kube: Kube, kind: str, obj: KubeObject, status: Mapping[str, Any]) -> None:
    """Merge-patch the status subresource of one object (namespaced or cluster-scoped)."""
    plural = PLURALS[kind]
    meta = obj.get("metadata", {})
    name = meta.get("name", "")
    namespace = meta.get("namespace")
    body = {"status": dict(status)}
    if namespace:
        call(
            f"patch {plural}/{name} status in {namespace}",
            lambda: kube.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, body
            ),
        )
    else:
        call(
            f"patch {plural}/{name} status",
            lambda: kube.custom.patch_cluster_custom_object_status(
                GROUP, VERSION, plural, name, body
            ),
        )


def read_configmap(kube: Kube, namespace: str, name: str) -> Any | None:
    try:
        return call(
            f"get configmap {namespace}/{name}",
            lambda: kube.core.read_namespaced_config_map(name, namespace),
        )
    except ClusterError as e:
        if is_not_found(e):
            return None
        raise


def apply_configmap(
    kube: Kube,
    namespace: str,
    name: str,
    data: Mapping[str, str],
    annotations: Mapping[str, str],
) -> None:
    """Create the ConfigMap, or replace its data and annotations if it exists."""
    existing = read_configmap(kube, namespace, name)
    meta = client.V1ObjectMeta(
        name=name,
        namespace=namespace,
        annotations=dict(annotations),
        labels={"app.kubernetes.io/managed-by": "affidavit-operator"},
    )
    if existing is None:
        body = client.V1ConfigMap(metadata=meta, data=dict(data))
        call(
            f"create configmap {namespace}/{name}",
            lambda: kube.core.create_namespaced_config_map(namespace, body),
        )
        return
    merged = dict(existing.metadata.annotations or {})
    merged.update(annotations)
    meta.annotations = merged
    meta.resource_version = existing.metadata.resource_version
    body = client.V1ConfigMap(metadata=meta, data=dict(data))
    call(
        f"replace configmap {namespace}/{name}",
        lambda: kube.core.replace_namespaced_config_map(name, namespace, body),
    )


def read_secret_data(kube: Kube, namespace: str, name: str) -> tuple[dict[str, bytes], str] | None:
    """The decoded data and resourceVersion of a Secret, or None when it does not exist."""
    try:
        secret = call(
            f"get secret {namespace}/{name}",
            lambda: kube.core.read_namespaced_secret(name, namespace),
        )
    except ClusterError as e:
        if is_not_found(e):
            return None
        raise
    data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
    return data, str(secret.metadata.resource_version)


def write_tls_secret(
    kube: Kube,
    namespace: str,
    name: str,
    data: Mapping[str, bytes],
    resource_version: str | None,
) -> None:
    """Create the ``kubernetes.io/tls`` Secret, or replace the version that was read.

    Optimistic concurrency: if another replica wrote it since ``resource_version`` was read,
    this raises a ``ClusterError`` for which :func:`is_conflict` is true.
    """
    encoded = {k: base64.b64encode(v).decode("ascii") for k, v in data.items()}
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={"app.kubernetes.io/managed-by": "affidavit-operator"},
            resource_version=resource_version,
        ),
        type="kubernetes.io/tls",
        data=encoded,
    )
    if resource_version is None:
        call(
            f"create secret {namespace}/{name}",
            lambda: kube.core.create_namespaced_secret(namespace, body),
        )
    else:
        call(
            f"replace secret {namespace}/{name}",
            lambda: kube.core.replace_namespaced_secret(name, namespace, body),
        )


def kopf_login(kubeconfig: Path | None) -> kopf.ConnectionInfo | None:
    """kopf's credentials from a kubeconfig file (current context), or the service account.

    ``kopf.login_with_kubeconfig`` only reads ``$KUBECONFIG``; the operator takes the file as a
    setting, so the same fields are read here from the given path.
    """
    if kubeconfig is None:
        return kopf.login_with_service_account(settings=kopf.OperatorSettings())
    try:
        doc = yaml.safe_load(kubeconfig.read_text()) or {}
        contexts = {c["name"]: c.get("context") or {} for c in doc.get("contexts", [])}
        clusters = {c["name"]: c.get("cluster") or {} for c in doc.get("clusters", [])}
        users = {u["name"]: u.get("user") or {} for u in doc.get("users", [])}
        context = contexts[doc["current-context"]]
        cluster = clusters[context["cluster"]]
        user = users[context["user"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise ClusterError(
            f"kubeconfig {kubeconfig} has no usable current context: {e}",
            hint="check current-context, clusters, users and contexts in the file",
        ) from e
    base = kubeconfig.parent

    def rel(value: str | None) -> str | None:
        return str(base / value) if value else None

    return kopf.ConnectionInfo(
        server=str(cluster.get("server") or ""),
        ca_path=rel(cluster.get("certificate-authority")),
        ca_data=cluster.get("certificate-authority-data"),
        insecure=cluster.get("insecure-skip-tls-verify"),
        certificate_path=rel(user.get("client-certificate")),
        certificate_data=user.get("client-certificate-data"),
        private_key_path=rel(user.get("client-key")),
        private_key_data=user.get("client-key-data"),
        token=user.get("token"),
        default_namespace=context.get("namespace"),
    )


def write_file_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` in one rename, so a reader never sees half a certificate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
