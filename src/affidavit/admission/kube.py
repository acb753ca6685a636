"""The webhook's only contact with the Kubernetes API: Secrets, Namespaces, one ConfigMap, the
owners of controller-made objects (``get`` only, on the built-in workload kinds), and
SubjectAccessReviews (who may act as a deployer, ``admission.acting``).

Kept apart so the rest of the admission package works on plain mappings behind small protocols
(``SecretReader``, ``NamespaceReader``, ``ConfigMapApi``, ``OwnerReader``): tests hand in real objects read from
a real apiserver, and a local run needs no cluster at all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from affidavit.errors import ClusterError
from affidavit.kubeconfig import api_client, owner_readers

__all__ = ["KubeApi", "api_client"]  # api_client: re-exported, defined in affidavit.kubeconfig


#: How long past its server-side timeout a watch's connection may stay silent before it is
#: taken for dead (and the ConfigMap listed again over a new one).
WATCH_SLACK_SECONDS = 10.0


class KubeApi:
    """Implements SecretReader, NamespaceReader, ConfigMapApi and OwnerReader over the client."""

    def __init__(
        self, api: Any, *, request_timeout: float = 5.0, owner_timeout: float = 2.0
    ) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._authorization = client.AuthorizationV1Api(api)
        self._timeout = request_timeout
        self._owner_timeout = owner_timeout
        self._owner_reads: dict[tuple[str, str], Callable[..., Any]] = owner_readers(api)
        self._watches: set[watch.Watch] = set()
        self._watches_lock = threading.Lock()

    def read_owner(
        self, group: str, kind: str, namespace: str, name: str
    ) -> Mapping[str, Any] | None:
        read = self._owner_reads.get((group, kind))
        if read is None:
            raise ValueError(f"{group}/{kind} is not an owner kind the webhook reads")
        try:
            raw = read(
                name, namespace, _preload_content=False, _request_timeout=self._owner_timeout
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise ClusterError(
                f"cannot get {kind} {namespace}/{name}: {e.status} {e.reason}",
                hint="the webhook's ServiceAccount needs get on the owner kinds (chart RBAC)",
            ) from e
        obj = json.loads(raw.data)
        return cast(dict[str, Any], obj) if isinstance(obj, dict) else None

    def _plain(self, obj: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._api.sanitize_for_serialization(obj))

    def review_access(
        self,
        user: str,
        groups: tuple[str, ...],
        attributes: Mapping[str, str],
        timeout: float | None = None,
    ) -> bool:
        """A SubjectAccessReview: whether ``user`` in ``groups`` may do what ``attributes``
        (resourceAttributes) say (``admission.acting``)."""
        body = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                groups=list(groups),
                resource_attributes=client.V1ResourceAttributes(**attributes),
            )
        )
        try:
            raw: Any = self._authorization.create_subject_access_review(
                body, _preload_content=False, _request_timeout=timeout or self._owner_timeout
            )
            answer = json.loads(raw.data)
        except ApiException as e:
            raise ClusterError(
                f"cannot create a SubjectAccessReview: {e.status} {e.reason}",
                hint="the webhook's ServiceAccount needs create on "
                "subjectaccessreviews.authorization.k8s.io (chart RBAC)",
            ) from e
        except (OSError, ValueError, HTTPError) as e:  # a connection lost, timed out; not JSON
            raise ClusterError(f"cannot create a SubjectAccessReview: {e}") from e
        status = answer.get("status") if isinstance(answer, dict) else None
        return isinstance(status, dict) and status.get("allowed") is True

    def read_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        try:
            obj = self._core.read_namespaced_secret(name, namespace, _request_timeout=self._timeout)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return self._plain(obj)

    def read_namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        try:
            obj = self._core.read_namespace(namespace, _request_timeout=self._timeout)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        meta = obj.metadata
        return dict((meta.labels if meta is not None else None) or {})

    def get_config_map(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        try:
            obj = self._core.read_namespaced_config_map(
                name, namespace, _request_timeout=self._timeout
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return self._plain(obj)

    def watch_config_map(
        self, namespace: str, name: str, resource_version: str | None, timeout_seconds: int
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        w = watch.Watch()  # type: ignore[no-untyped-call]
        with self._watches_lock:
            self._watches.add(w)
        kwargs: dict[str, Any] = {
            "field_selector": f"metadata.name={name}",
            "timeout_seconds": timeout_seconds,
            # The API server ends the watch after ``timeout_seconds``; a connection that died
            # without closing (an API server node lost, a load balancer failing over,
            # connection tracking dropped) never says so, and a watch only reads: without a
            # read timeout the thread waited on it for ever, and the webhook kept an old
            # index (a revoked exception admitting, a new policy never enforced) while ready.
            "_request_timeout": (self._timeout, timeout_seconds + WATCH_SLACK_SECONDS),
        }
        if resource_version:
            kwargs["resource_version"] = resource_version
        try:
            stream = w.stream(  # type: ignore[no-untyped-call]
                self._core.list_namespaced_config_map, namespace, **kwargs
            )
            for event in stream:
                obj = event.get("object")
                plain = obj if isinstance(obj, dict) else self._plain(obj)
                yield str(event.get("type")), plain
        except ApiException as e:
            if e.status == 410:  # resource version too old: the caller lists again
                yield "ERROR", {}
                return
            raise
        finally:
            w.stop()  # type: ignore[no-untyped-call]
            with self._watches_lock:
                self._watches.discard(w)

    def stop_watches(self) -> None:
        """Interrupt every open watch now (its socket is shut down): a watch otherwise blocks
        its thread until the next event or its server-side timeout."""
        with self._watches_lock:
            open_watches = list(self._watches)
        for w in open_watches:
            w.stop()  # type: ignore[no-untyped-call]
