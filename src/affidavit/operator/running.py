"""What runs in the cluster, one entry per workload: Pods grouped by their top controller.

The re-check reports workloads, not Pods: a Deployment of thirty replicas that runs without the
evidence now required is one finding, named after the Deployment its owners know, not thirty
findings named after Pod hashes. Each Pod is followed up its controller ``ownerReferences``
(Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob, or directly a StatefulSet, DaemonSet,
ReplicationController) to the top controller, read from the API (its labels count for the
owner and escalation label rules, as they did at admission). A Pod with no controller is its
own workload. Pods that have finished (Succeeded, Failed) run nothing and are left out; a
workload in a rollout lists old and new Pods, so the images of both are judged.

An owner that cannot be read (deleted meanwhile) ends the walk at the last object that could be:
the Pods are still reported, under the nearest owner known.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from affidavit.errors import AffidavitError
from affidavit.kubeconfig import CREATORS, owner_readers
from affidavit.operator import kube
from affidavit.policy.lifetime import parse_time

#: (API group, kind) -> apiVersion, for the kinds a controller chain may pass through.
API_VERSIONS: Mapping[tuple[str, str], str] = {
    ("apps", "ReplicaSet"): "apps/v1",
    ("apps", "Deployment"): "apps/v1",
    ("apps", "StatefulSet"): "apps/v1",
    ("apps", "DaemonSet"): "apps/v1",
    ("batch", "Job"): "batch/v1",
    ("batch", "CronJob"): "batch/v1",
    ("", "ReplicationController"): "v1",
}
FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Workload:
    """One top controller (or bare Pod) and the Pods that run for it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    pods: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.kind, self.name)


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``ownerReferences`` entry with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None


Reader = Callable[[str, str, str, str], Mapping[str, Any] | None]


def top_controller(pod: Mapping[str, Any], read: Reader) -> Workload:
    """The workload ``pod`` runs for; ``read(group, kind, namespace, name)`` reads an owner."""
    meta = pod.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    current: Mapping[str, Any] = pod
    api_version, kind = "v1", "Pod"
    for _ in range(4):  # Pod -> ReplicaSet -> Deployment is the longest built-in chain
        ref = controller_of(current)
        if ref is None:
            break
        ref_version = str(ref.get("apiVersion") or "")
        group, ref_kind = _group(ref_version), str(ref.get("kind") or "")
        if (group, ref_kind) not in API_VERSIONS:
            break  # a custom controller: its Pods are reported as Pods (as they were judged)
        if (group, ref_kind) not in CREATORS.get(kind, frozenset()):
            break  # no controller of that kind makes this one (admission judged it alone)
        owner = read(group, ref_kind, namespace, str(ref.get("name") or ""))
        if owner is None or (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
            break
        current, api_version, kind = owner, ref_version, ref_kind
    cmeta = current.get("metadata") or {}
    labels = cmeta.get("labels") or {}
    return Workload(
        api_version=api_version,
        kind=kind,
        namespace=namespace,
        name=str(cmeta.get("name") or ""),
        uid=str(cmeta.get("uid") or ""),
        labels={str(k): str(v) for k, v in labels.items()} if kind != "Pod" else {},
    )


#: A terminating Pod is left out while its end is this near. Its owner sets how long it may
#: take (``terminationGracePeriodSeconds``): a Pod told to take a day, whose process ignores
#: SIGTERM, runs for a day after a delete or a scale to zero, and was hidden from the re-check
#: all that time.
TERMINATING_GRACE = timedelta(minutes=5)


def _ending_soon(meta: Mapping[str, Any], now: datetime) -> bool:
    """Whether a Pod is being deleted and due to be gone within ``TERMINATING_GRACE``."""
    stamp = meta.get("deletionTimestamp")
    due = parse_time(stamp) if isinstance(stamp, str) else None
    return due is not None and due <= now + TERMINATING_GRACE  # no time: judged as running


def group_pods(
    pods: Iterable[Mapping[str, Any]], read: Reader, now: datetime | None = None
) -> list[Workload]:
    """Running Pods grouped by top controller, sorted by namespace, kind and name."""
    now = now or datetime.now(UTC)
    found: dict[tuple[str, str, str], Workload] = {}
    members: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in FINISHED:
            continue
        if _ending_soon(pod.get("metadata") or {}, now):
            continue
        w = top_controller(pod, read)
        found.setdefault(w.key, w)
        members.setdefault(w.key, []).append(pod)
    return [
        Workload(w.api_version, w.kind, w.namespace, w.name, w.uid, w.labels, tuple(members[k]))
        for k, w in sorted(found.items())
    ]


class OwnerReads:
    """Reads owners through the API, each once per pass (Pods of one ReplicaSet share it)."""

    def __init__(self, api: kube.Kube) -> None:
        self._reads: dict[tuple[str, str], Callable[..., Any]] = owner_readers(api.api)
        self._seen: dict[tuple[str, str, str, str], Mapping[str, Any] | None] = {}

    def __call__(
        self, group: str, kind: str, namespace: str, name: str
    ) -> Mapping[str, Any] | None:
        key = (group, kind, namespace, name)
        if key not in self._seen:
            read = self._reads[(group, kind)]
            try:
                raw = kube.call(
                    f"get {kind} {namespace}/{name}",
                    lambda: read(name, namespace, _preload_content=False, _request_timeout=10),
                )
                obj = json.loads(raw.data)
                self._seen[key] = obj if isinstance(obj, dict) else None
            except AffidavitError as e:
                if not kube.is_not_found(e):
                    raise
                self._seen[key] = None
        return self._seen[key]


def list_pods(api: kube.Kube, page: int = 500) -> list[Mapping[str, Any]]:
    """Every Pod in the cluster, as plain JSON, ``page`` at a time (a large cluster's list in
    one answer would hold the API server and this process for its whole size)."""
    pods: list[Mapping[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": page, "_preload_content": False, "_request_timeout": 60}
        if token:
            kwargs["_continue"] = token
        raw = kube.call("list pods", partial(api.core.list_pod_for_all_namespaces, **kwargs))
        body = json.loads(raw.data)
        pods += [p for p in body.get("items") or [] if isinstance(p, dict)]
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return pods


def running_workloads(api: kube.Kube) -> list[Workload]:
    """What runs now, one entry per workload (see the module docstring)."""
    return group_pods(list_pods(api), OwnerReads(api))
