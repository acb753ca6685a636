"""What runs is what was judged: a Pod's tags are pinned to the digests that were verified.

A Deployment by tag is judged at the digest its tag names at that moment; retag the image, and
a restart or a new node pulls something that was never judged. So the mutating webhook
(``/mutate``, Pod CREATE only) rewrites each tag reference that a policy covers to
``NAME:TAG@sha256:...``, where the digest is the one the evidence lookup resolved and judged:
the same resolver and cache as the validating webhook, which is called after it and judges the
digest form (a cache hit, never a second resolution that could disagree).

Workload templates are judged but never rewritten, so GitOps tools see no drift; their Pods are
pinned as the controllers create them. Nothing is written for an image that no policy covers
(its registry is not ours to contact), nor for one an active exception admits by name (an
exception naming a tag does not cover every digest), nor for one whose tag does not resolve in
time: the validating webhook then judges it as before, and denies what it cannot verify. The
mutation never denies on its own, except a request it cannot read, refused like a bad review.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from affidavit.admission.decide import Answer, Webhook
from affidavit.admission.resolve import Lookup
from affidavit.admission.review import MalformedReview, parse_review, review_response
from affidavit.admission.workloads import ContainerImage, extract_images

log = logging.getLogger("affidavit.admission")

PINNED_ANNOTATION = "pinned"


@dataclass
class Pinner:
    """The mutating half of the webhook; borrows the judge's policy, resolver and budget."""

    webhook: Webhook
    workers: int = 8
    _pool: ThreadPoolExecutor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="affidavit-pin")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def handle(self, body: bytes) -> Answer:
        """Answer a Pod CREATE review with a JSON Patch pinning its covered tags, if any."""
        started = time.monotonic()
        if len(body) > self.webhook.judge.max_body_bytes:
            return self.webhook.too_large(body[:65536], len(body))
        try:
            req = parse_review(body)
            if (req.group, req.kind, req.operation, req.sub_resource) != ("", "Pod", "CREATE", ""):
                return Answer(200, review_response(req.uid, allowed=True))
            assert req.object is not None
            pod = extract_images("Pod", req.object, uid=req.uid)
        except MalformedReview as e:
            if e.uid is None:
                return Answer(400, {"error": e.message})
            return Answer(200, review_response(e.uid, allowed=False, message=e.message, code=400))
        tags = [c for c in pod.containers if "@" not in c.image]
        patch = self._pins(tags, req.namespace, req.name, pod.pull_secrets, started) if tags else []
        annotations = {PINNED_ANNOTATION: str(len(patch))} if patch else None
        return Answer(
            200, review_response(req.uid, allowed=True, patch=patch, audit_annotations=annotations)
        )

    def _pins(
        self,
        tags: list[ContainerImage],
        namespace: str,
        name: str,
        pull_secrets: tuple[str, ...],
        started: float,
    ) -> list[dict[str, Any]]:
        """A JSON Patch ``replace`` for every tag that resolved within the budget."""
        index = self.webhook.policy.current()
        if index is None:
            return []  # the validating webhook refuses until an index is loaded
        try:
            ns_labels = self.webhook.namespaces.labels(namespace)
        except Exception as e:  # the validating webhook denies with the reason
            log.warning("not pinning in namespace %s: %s", namespace, e)
            return []
        jobs: dict[str, Future[Lookup]] = {}
        now = datetime.now(UTC)
        for image in dict.fromkeys(c.image for c in tags):
            if index.exceptions_for(namespace, "Pod", name, image, now):
                continue  # break-glass admits it by name, not by evidence: nothing to pin
            eff = index.effective(
                cluster=self.webhook.judge.cluster,
                region=self.webhook.judge.region,
                namespace=namespace,
                namespace_labels=ns_labels,
                image=image,
            )
            if eff is None:
                continue  # no policy covers it: its registry is not contacted
            jobs[image] = self._pool.submit(
                self.webhook.resolver.lookup,
                image,
                eff.signers,
                namespace=namespace,
                pull_secrets=pull_secrets,
            )
        remaining = max(0.0, self.webhook.judge.budget_seconds - (time.monotonic() - started))
        wait_futures(list(jobs.values()), timeout=remaining)
        digests: dict[str, str] = {}
        for image, job in jobs.items():
            if not job.done():
                job.cancel()
                self.webhook.metrics.pins.labels(result="unresolved").inc()
                log.warning("not pinning %s: the lookup exceeded the budget", image)
                continue
            try:
                digests[image] = job.result().digest
            except Exception as e:  # the validating webhook reports why, and fails closed
                self.webhook.metrics.pins.labels(result="unresolved").inc()
                log.warning("not pinning %s: %s", image, e)
        patch: list[dict[str, Any]] = []
        for c in tags:
            digest = digests.get(c.image)
            if digest is None:
                continue
            patch.append({"op": "replace", "path": c.pointer, "value": f"{c.image}@{digest}"})
            self.webhook.metrics.pins.labels(result="pinned").inc()
            log.info("pinned %s at %s to %s", c.image, c.pointer, digest)
        return patch
