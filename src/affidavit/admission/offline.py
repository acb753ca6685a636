"""The webhook's judgement without a cluster or a registry: a manifest and evidence files in,
the Decision and the admission message out.

Why: a policy repository must be able to test a change to its policies before the cluster
applies it (``affidavit test DIR``, like ``kyverno test`` or ``gator verify``). The answer is
only worth having if it is the webhook's own, so this reuses what the webhook does after the
evidence lookup: the same image extraction per workload kind, the same canonical names, the same
strictest-wins evaluation, the same admission message. What it leaves out is what needs the
world: the registry (the evidence comes from files, assumed: their signatures are never
checked), the API server (the namespace's labels come from the case, owners are not
consulted) and the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from affidavit.admission.review import MalformedReview
from affidavit.admission.workloads import extract_images, is_workload
from affidavit.attestations.evidence import ImageEvidence
from affidavit.errors import InputError
from affidavit.policy.decision import Decision
from affidavit.policy.evaluate import RequestContext, evaluate
from affidavit.policy.index import PolicyIndex
from affidavit.policy.messages import admission_message
from affidavit.policy.presets import UnmatchedImages

__all__ = ["Workload", "judge", "read_workload"]


@dataclass(frozen=True)
class Workload:
    """What the webhook reads off an object: kind, name, namespace, labels, canonical images."""

    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str]
    images: tuple[str, ...]


def read_workload(obj: Mapping[str, Any], *, where: str, namespace: str | None = None) -> Workload:
    """The workload in a manifest, read as the webhook reads an AdmissionReview's object."""
    kind = str(obj.get("kind") or "")
    if not is_workload(kind):
        raise InputError(
            f"{where}: kind {kind or '(none)'!r} is not a workload Affidavit judges",
            hint="use a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or "
            "ReplicationController",
        )
    meta = obj.get("metadata") or {}
    try:
        found = extract_images(kind, obj)
    except MalformedReview as e:
        raise InputError(f"{where}: {e.message.replace('request.object', kind)}") from e
    ctx = RequestContext(
        uid="test",
        cluster="",
        region="",
        namespace="",
        namespace_labels={},
        kind=kind,
        name="",
        operation="CREATE",
        user="",
        labels={},
        images=found.images,
    )
    try:
        images = ctx.canonical().images
    except InputError as e:
        raise InputError(f"{where}: {e.message}", hint=e.hint) from e
    return Workload(
        kind=kind,
        name=str(meta.get("name") or ""),
        namespace=namespace or str(meta.get("namespace") or "default"),
        labels={**found.pod_labels, **(meta.get("labels") or {})},
        images=images,
    )


def judge(
    workload: Workload,
    evidence: Mapping[str, ImageEvidence | None],
    index: PolicyIndex,
    *,
    cluster: str,
    region: str,
    namespace_labels: Mapping[str, str],
    unmatched_images: UnmatchedImages,
    now: datetime,
    decision_id: str,
    user: str = "affidavit-test",
) -> tuple[Decision, str | None]:
    """The Decision and, when it has violations, the message the apiserver would show."""
    ctx = RequestContext(
        uid=decision_id,
        cluster=cluster,
        region=region,
        namespace=workload.namespace,
        namespace_labels=dict(namespace_labels),
        kind=workload.kind,
        name=workload.name,
        operation="CREATE",
        user=user,
        labels=dict(workload.labels),
        images=workload.images,
        unmatched_images=unmatched_images,
    )
    decision = evaluate(ctx, evidence, index, now=now, decision_id=decision_id)
    message = admission_message(decision) if decision.violations else None
    return decision, message
