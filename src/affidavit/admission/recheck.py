"""The webhook's judgement, lent to the operator to re-check workloads that already run.

Why here and not in the operator: a workload reported as failing must fail for exactly the
reason its admission would fail now, so the re-check must be the webhook's own engine, not a
copy of it. That engine is ``Webhook.judge_context`` (the evidence lookup under the budget
with the workload's pull secrets, the fail-open rule for an unavailable registry,
strictest-wins evaluation), and it lives in ``affidavit.admission``. The layering contract
(``admission`` and ``operator`` never import each other) stays as it is: the operator declares
the small protocol it needs (``affidavit.operator.recheck.WorkloadJudge``), and the CLI, which
sits above both, builds this judge and hands it to the operator process. The operator keeps
what is about the cluster (which Pods run, grouped by their top controller; the PolicyReports;
the metric); this module keeps what is about judging, including which images a Pod runs: the
webhook's own extraction (every container list, image volumes) with, for each container, the
digest the kubelet reports in ``status.imageID`` (what was pulled, whatever the tag says now).
Without a status (a Pod not started yet, or a control plane with no kubelet, as in the e2e
tests) the image is judged as the spec writes it, which the webhook pinned to the digest it
judged at admission when it could; the result names those images (``imagesFromSpec``).

What it leaves out of admission: the ledger (a re-check is not a decision anybody asked for; it
is reported, never recorded as an admission), the owner chain (the operator judges the top
controller itself), and the policy source (the operator passes the index it compiled, the one
it publishes to the webhook).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from affidavit import defaults
from affidavit.admission.decide import Judge, Webhook
from affidavit.admission.policy_source import NamespaceLabels
from affidavit.admission.resolve import EvidenceResolver
from affidavit.admission.review import MalformedReview
from affidavit.admission.workloads import extract_images
from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.errors import InputError
from affidavit.policy.decision import Decision
from affidavit.policy.evaluate import RequestContext
from affidavit.policy.index import PolicyIndex
from affidavit.policy.presets import UnmatchedImages

__all__ = [
    "RecheckSettings",
    "RunningJudge",
    "build_running_judge",
    "pods_running",
    "running_image",
]

#: Lookup threads of the re-check: it runs in the background, never in a hurry.
WORKERS = 4


class _IndexGiven:
    """The policy source of a webhook that is only ever handed its index (``judge_context``)."""

    def current(self) -> PolicyIndex | None:
        return None

    def problem(self) -> str | None:
        return "the re-check is given the operator's index with each workload"

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


@dataclass(frozen=True)
class RecheckSettings:
    """The webhook settings the judgement depends on (the chart passes both the same values).

    Signers are not among them: they come from the policies, in the index."""

    cluster_name: str
    region: str
    kubeconfig: Path | None = None  # None: the Pod's service account
    insecure_registries: tuple[str, ...] = ()
    registry_ca: Path | None = None
    registry_allowed_hosts: tuple[str, ...] = ()
    budget_seconds: float = defaults.BUDGET_SECONDS
    unmatched_images: UnmatchedImages = "Warn"
    evidence_ttl_seconds: float = 300.0
    read_pull_secrets: bool = True


#: Who "asked" for a re-check, as the Decision's user.
RECHECK_USER = "affidavit-operator (re-check)"
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


def running_image(spec_image: str, image_id: str | None) -> str | None:
    """The image a container runs, as ``REPOSITORY[:TAG]@sha256:DIGEST``, from its status'
    ``imageID``; None when that names no registry digest (no status yet: a Pod not started, or
    a control plane without a kubelet; a locally built image's bare ``sha256:`` config id).

    The repository is the spec's (the one the policies matched at admission and the one the
    resolver may contact); the digest is the kubelet's: what was pulled, whatever the tag says
    now. ``docker-pullable://`` and similar prefixes are dropped.
    """
    if not image_id:
        return None
    found = _DIGEST.search(image_id.rpartition("://")[2])
    if found is None:
        return None
    return f"{spec_image.split('@', 1)[0]}@{found.group(1)}"


def pods_running(
    pods: Sequence[Mapping[str, Any]],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], Mapping[str, str]]:
    """What the Pods of one workload run: images (by digest where their status says, every
    list the webhook reads), the images taken from the spec for want of a status, pull secrets,
    and the first Pod's labels. ``InputError`` names a Pod the webhook could not read."""
    images: list[str] = []
    from_spec: list[str] = []
    secrets: list[str] = []
    labels: Mapping[str, str] = {}
    for i, pod in enumerate(pods):
        meta = pod.get("metadata") or {}
        try:
            found = extract_images("Pod", pod)
        except MalformedReview as e:
            where = f"Pod {meta.get('namespace')}/{meta.get('name')}"
            raise InputError(f"{where}: {e.message.replace('request.object', 'Pod')}") from e
        ids = _image_ids(pod.get("status") or {})
        for c in found.containers:
            ran = (
                None
                if c.path.startswith("spec.volumes")
                else running_image(c.image, ids.get(c.container))
            )
            if ran is None:
                from_spec.append(c.image)
            images.append(ran or c.image)
        secrets += found.pull_secrets
        if i == 0:
            labels = found.pod_labels
    return (
        tuple(dict.fromkeys(images)),
        tuple(dict.fromkeys(from_spec)),
        tuple(dict.fromkeys(secrets)),
        labels,
    )


def _image_ids(status: Mapping[str, Any]) -> dict[str, str]:
    """Container name -> ``imageID`` from every status list (names are unique in a Pod)."""
    ids: dict[str, str] = {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for item in status.get(key) or []:
            if isinstance(item, Mapping) and isinstance(item.get("imageID"), str):
                ids[str(item.get("name"))] = item["imageID"]
    return ids


class RunningJudge:
    """Judges one running workload as the webhook would admit it now; see the module docstring."""

    def __init__(self, webhook: Webhook) -> None:
        self.webhook = webhook

    def judge(
        self,
        *,
        kind: str,
        name: str,
        namespace: str,
        labels: Mapping[str, str],
        pods: Sequence[Mapping[str, Any]],
        index: PolicyIndex,
        now: datetime,
        decision_id: str,
    ) -> tuple[Decision, tuple[str, ...]]:
        """The Decision for a workload whose ``pods`` run (their images as they run), and the
        images judged as the spec writes them because no Pod status named their digest.

        The namespace's labels are read as the webhook reads them. Raises ``InputError`` for a
        Pod the webhook could not read or an image that is not a valid reference, and the API's
        error when the namespace cannot be read (fail closed)."""
        images, from_spec, pull_secrets, pod_labels = pods_running(pods)
        ctx = RequestContext(
            uid=decision_id,
            cluster=self.webhook.judge.cluster,
            region=self.webhook.judge.region,
            namespace=namespace,
            namespace_labels=self.webhook.namespaces.labels(namespace),
            kind=kind,
            name=name,
            operation="RECHECK",
            user=RECHECK_USER,
            labels={**pod_labels, **labels},
            images=images,
            unmatched_images=self.webhook.judge.unmatched_images,
        ).canonical()
        decision = self.webhook.judge_context(
            ctx,
            pull_secrets,
            index,
            started=time.monotonic(),
            decision_id=decision_id,
            now=now,
        )
        return decision, from_spec

    def close(self) -> None:
        self.webhook.close()
        self.webhook.resolver.close()


def build_running_judge(settings: RecheckSettings) -> RunningJudge:
    """The webhook's resolver and engine, wired as ``build_webhook`` wires them, minus the
    ledger, the owner chain and the policy source."""
    from affidavit.admission.kube import KubeApi, api_client

    kube = KubeApi(api_client(settings.kubeconfig))
    resolver = EvidenceResolver(
        cache=EvidenceCache(
            max_bytes=defaults.EVIDENCE_CACHE_BYTES, positive_ttl=settings.evidence_ttl_seconds
        ),
        secrets=kube if settings.read_pull_secrets else None,
        insecure_hosts=settings.insecure_registries,
        ca_bundle=settings.registry_ca,
        registry_timeout=0.6 * settings.budget_seconds,
        allowed_hosts=settings.registry_allowed_hosts,
    )
    webhook = Webhook(
        judge=Judge(
            cluster=settings.cluster_name,
            region=settings.region,
            budget_seconds=settings.budget_seconds,
            unmatched_images=settings.unmatched_images,
        ),
        policy=_IndexGiven(),
        resolver=resolver,
        namespaces=NamespaceLabels(kube),
        workers=WORKERS,
    )
    return RunningJudge(webhook)
