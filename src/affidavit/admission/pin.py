"""What runs is what was judged: a Pod's tags are pinned to the digests that were verified.

A Deployment by tag is judged at the digest its tag names at that moment; retag the image, and
a restart or a new node pulls something that was never judged. So the mutating webhook
(``/mutate``, Pods only) rewrites each tag reference that a policy covers to
``NAME:TAG@sha256:...``, where the digest is the one the evidence lookup resolved and judged:
the same resolver, registry trust, cache and fair threads as the validating webhook, which is
called after it and judges the digest form (a cache hit, never a second resolution that could
disagree).

Workload templates are judged but never rewritten, so GitOps tools see no drift; their Pods are
pinned as the controllers create them. A Pod's UPDATE (a container's image is mutable, and
``kubectl debug`` adds an ephemeral container through ``pods/ephemeralcontainers``) gets the
same for each image the update brings in; an image the Pod already ran is left as written,
since rewriting it would restart its container, and the validating webhook admits an update that
changes no image without judging it. Nothing is written for an image that no policy covers
(its registry is not ours to contact), nor for one an active exception admits by name because
its evidence falls short (an exception naming a tag does not cover its pinned form; where the
evidence suffices the exception is not used, and the tag is pinned), nor for one whose tag does
not resolve in time: the validating webhook then judges the tag as written, denies what it
cannot verify, and refuses (``image.pinned``, to be retried) what passes under an Enforce
policy, since a tag left as written runs whatever it names at the next pull. The
mutation never denies on its own, except a request it cannot read, refused like a bad review,
and one whose namespace has no turn free within its budget (its lookups share the validating
webhook's threads and per-namespace turns: ``WarmJudge.pin``), refused with code 429.

``/mutate`` also receives AccountabilityExceptions, and stamps who asked for each
(``affidavit.admission.stamp``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from affidavit.admission.decide import Answer, Webhook
from affidavit.admission.resolve import Lookup, Outcome
from affidavit.admission.review import (
    MalformedReview,
    ParsedRequest,
    parse_review,
    review_response,
)
from affidavit.admission.stamp import is_exception, stamp_patch
from affidavit.admission.workloads import ContainerImage, WorkloadImages, extract_images
from affidavit.attestations.reference import canonical_image
from affidavit.errors import InputError
from affidavit.ids import new_id
from affidavit.policy.index import PolicyIndex

log = logging.getLogger("affidavit.admission")

PINNED_ANNOTATION = "pinned"


@dataclass(frozen=True)
class PinWork:
    """A Pod review with tags to look up: ``Pinner.pin``'s part, which waits for registries."""

    req: ParsedRequest
    pod: WorkloadImages
    tags: tuple[ContainerImage, ...]


@dataclass(frozen=True)
class Pinner:
    """The mutating half of the webhook; borrows the judge's policy, resolver, threads, budget."""

    webhook: Webhook

    def handle(self, body: bytes, started: float | None = None) -> Answer:
        """Answer a Pod CREATE or UPDATE review with a JSON Patch pinning the covered tags it
        brings in, if any. ``started``: when the review arrived (its budget runs from then)."""
        started = time.monotonic() if started is None else started
        work = self.prepare(body)
        return work if isinstance(work, Answer) else self.pin(work, started)

    def prepare(self, body: bytes) -> Answer | PinWork:
        """Read the review (no I/O): its answer where nothing is to be looked up (a request
        that is not a Pod's, a Pod with no tag to pin, an exception to stamp, a review it cannot
        read), else what ``pin`` looks up, which waits for the registry."""
        if len(body) > self.webhook.judge.max_body_bytes:
            return self.webhook.too_large(body[:65536], len(body))
        try:
            req = parse_review(body)
            if is_exception(req):  # the other mutation: who asked for it (admission.stamp)
                patch = stamp_patch(req)
                return Answer(200, review_response(req.uid, allowed=True, patch=patch))
            if (req.group, req.kind) != ("", "Pod") or (req.operation, req.sub_resource) not in (
                ("CREATE", ""),
                ("UPDATE", ""),
                ("UPDATE", "ephemeralcontainers"),
            ):
                return Answer(200, review_response(req.uid, allowed=True))
            assert req.object is not None
            pod = extract_images("Pod", req.object, uid=req.uid)
        except MalformedReview as e:
            if e.uid is None:
                return Answer(400, {"error": e.message})
            return Answer(200, review_response(e.uid, allowed=False, message=e.message, code=400))
        kept = _images_before(req.old_object) if req.operation == "UPDATE" else frozenset()
        tags = [c for c in pod.containers if "@" not in c.image and c.image not in kept]
        brought = tuple(i for i in pod.images if i not in kept)  # what the validator judges
        if not tags or _distinct(brought) > self.webhook.judge.max_images:
            # nothing to pin, or the validating webhook refuses the request: nothing to look up
            return Answer(200, review_response(req.uid, allowed=True))
        return PinWork(req, pod, tuple(tags))

    def pin(self, work: PinWork, started: float) -> Answer:
        """The answer to ``work``: its tags looked up (under the budget that began at
        ``started``) and those resolved pinned."""
        req = work.req
        patch = self._pins(list(work.tags), req, work.pod, started)
        annotations = {PINNED_ANNOTATION: str(len(patch))} if patch else None
        return Answer(
            200, review_response(req.uid, allowed=True, patch=patch, audit_annotations=annotations)
        )

    def _pins(
        self, tags: list[ContainerImage], req: ParsedRequest, pod: WorkloadImages, started: float
    ) -> list[dict[str, Any]]:
        """A JSON Patch ``replace`` for every tag whose evidence lookup resolved in time (and,
        where an exception covers it, whose evidence admits the pinned form on its own)."""
        namespace, name, pull_secrets = req.namespace, req.name, pod.pull_secrets
        index = self.webhook.policy.current()
        if index is None:
            return []  # the validating webhook refuses until an index is loaded
        try:
            ns_labels = self.webhook.namespaces.labels(namespace)
        except Exception as e:  # the validating webhook denies with the reason
            log.warning("not pinning in namespace %s: %s", namespace, e)
            return []
        deadline = started + self.webhook.judge.budget_seconds
        jobs: dict[str, Future[Outcome]] = {}
        excepted: set[str] = set()
        now = datetime.now(UTC)
        for image in dict.fromkeys(c.image for c in tags):
            try:
                canonical_image(image)
            except InputError:
                continue  # not an image reference: the validating webhook refuses the Pod
            if index.exceptions_for(namespace, "Pod", name, image, now):
                excepted.add(image)  # pinned only if its evidence admits it without one
            eff = index.effective(
                cluster=self.webhook.judge.cluster,
                region=self.webhook.judge.region,
                namespace=namespace,
                namespace_labels=ns_labels,
                image=image,
            )
            if eff is None:
                continue  # no policy covers it: its registry is not contacted
            # The same lookup as the validating webhook's: registry trust, cache, fair threads.
            lookup = partial(
                self.webhook.resolver.outcome,
                image,
                eff.signers,
                index=index,
                namespace=namespace,
                pull_secrets=pull_secrets,
            )
            jobs[image] = self.webhook.scheduler.submit(namespace, lookup, deadline=deadline)
        wait_futures(list(jobs.values()), timeout=max(0.0, deadline - time.monotonic()))
        digests: dict[str, str] = {}
        for image, job in jobs.items():
            outcome = (
                job.result() if job.done() and not job.cancelled() and not job.exception() else None
            )
            if isinstance(outcome, Lookup):
                pinned = f"{image}@{outcome.digest}"
                if image in excepted and not self._admits(
                    req, pod, ns_labels, index, pinned, started
                ):
                    # Break-glass admits the tag by name, not by evidence: an exception naming
                    # a tag does not cover its pinned form, so pinning would refuse the Pod.
                    continue
                digests[image] = outcome.digest
                continue
            job.cancel()
            self.webhook.metrics.pins.labels(result="unresolved").inc()
            why = (
                "the lookup failed or did not finish in time" if outcome is None else outcome.found
            )
            log.warning("not pinning %s: %s", image, why)
        patch: list[dict[str, Any]] = []
        for c in tags:
            digest = digests.get(c.image)
            if digest is None:
                continue
            patch.append({"op": "replace", "path": c.pointer, "value": f"{c.image}@{digest}"})
            self.webhook.metrics.pins.labels(result="pinned").inc()
            log.info("pinned %s at %s to %s", c.image, c.pointer, digest)
        return patch

    def _admits(
        self,
        req: ParsedRequest,
        pod: WorkloadImages,
        ns_labels: Mapping[str, str],
        index: PolicyIndex,
        pinned: str,
        started: float,
    ) -> bool:
        """Whether the validating webhook would admit ``pinned`` in this Pod on its evidence
        alone (the lookup that resolved it is cached: nothing is fetched again).

        An exception that covers an image admits it only where its evidence falls short. Where
        the evidence suffices the exception is not used, so the tag is pinned as any other:
        left as written, a retag would run a digest nobody judged (with the decision recording
        a clean admission and no exception), even one the exception itself could never admit,
        such as one whose requester a ``separateRequester`` policy refuses."""
        ctx = self.webhook.context(req, pod, ns_labels, (pinned,))
        try:
            decision = self.webhook.judge_context(
                ctx.canonical(), pod.pull_secrets, index, started=started, decision_id=new_id()
            )
        except Exception as e:  # the validating webhook judges the tag as written
            log.warning("not pinning %s: judging its evidence failed: %s", pinned, e)
            return False
        return decision.outcome == "allowed" and decision.exception is None


def _distinct(images: tuple[str, ...]) -> int:
    """How many images the validating webhook counts: by canonical name (``Registry.example``
    and ``registry.example``, a port written ``:05000`` and ``:5000``, are one image)."""
    names = set()
    for image in images:
        try:
            names.add(canonical_image(image))
        except InputError:
            names.add(image)
    return len(names)


def _images_before(old: Mapping[str, Any] | None) -> frozenset[str]:
    """The images an updated Pod ran before (none when the old object cannot be read: then
    every tag is pinned, as the validating webhook then judges every image)."""
    if old is None:
        return frozenset()
    try:
        return frozenset(extract_images("Pod", old).images)
    except MalformedReview:
        return frozenset()
