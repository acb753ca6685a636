"""One AdmissionReview in, one answer out: images → digests → evidence → Decision → ledger.

This is the webhook without HTTP, so the app stays a thin shell and tests can drive the whole
judgement. It owns the rules that are about admission rather than policy: the per-request time
budget (the apiserver gives up at its timeout; an answer after that is worthless, so a slow
registry fails closed unless the policy fails open), the ledger's buffering, and the shape of the
response for each mode (a denial's message, Warn's warnings, Audit's annotations).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from affidavit.admission.metrics import Metrics
from affidavit.admission.policy_source import NamespaceLabels, PolicySource
from affidavit.admission.resolve import EvidenceResolver, Lookup
from affidavit.admission.review import (
    AdmissionReview,
    MalformedReview,
    ParsedRequest,
    parse_review,
    review_response,
)
from affidavit.admission.workloads import extract_images, is_workload
from affidavit.attestations.evidence import ImageEvidence
from affidavit.errors import AffidavitError, LedgerError
from affidavit.ledger import BUFFERED_NOTE, BufferedLedger
from affidavit.policy.decision import Decision, Violation
from affidavit.policy.evaluate import RequestContext, evaluate
from affidavit.policy.index import PolicyIndex
from affidavit.policy.messages import admission_message

log = logging.getLogger("affidavit.admission")

DECISION_ANNOTATION = "decision"


@dataclass(frozen=True)
class Answer:
    """What the app sends: an HTTP status and a JSON body."""

    status: int
    body: AdmissionReview | dict[str, Any]
    decision: Decision | None = None


@dataclass(frozen=True)
class Judge:
    cluster: str
    region: str
    budget_seconds: float = 8.0
    max_body_bytes: int = 3 * 1024 * 1024


@dataclass
class Webhook:
    """The admission pipeline with its collaborators."""

    judge: Judge
    policy: PolicySource
    resolver: EvidenceResolver
    namespaces: NamespaceLabels = field(default_factory=NamespaceLabels)
    ledger: BufferedLedger | None = None
    metrics: Metrics = field(default_factory=Metrics)
    workers: int = 16

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="affidavit-evidence")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- entry point -----------------------------------------------------------------------

    def handle(self, body: bytes) -> Answer:
        started = time.monotonic()
        try:
            return self._handle(body, started)
        finally:
            self.metrics.duration.observe(time.monotonic() - started)

    def _handle(self, body: bytes, started: float) -> Answer:
        if len(body) > self.judge.max_body_bytes:
            return self.too_large(body[:65536], len(body))
        try:
            req = parse_review(body)
            if req.operation not in ("CREATE", "UPDATE") or not is_workload(req.kind):
                return Answer(200, review_response(req.uid, allowed=True))
            assert req.object is not None
            workload = extract_images(req.kind, req.object, uid=req.uid)
        except MalformedReview as e:
            if e.uid is None:
                return Answer(400, {"error": e.message})
            return Answer(200, review_response(e.uid, allowed=False, message=e.message, code=400))
        index = self.policy.current()
        if index is None:
            return self._deny(
                req,
                "no policy index is loaded yet (the webhook is not ready); "
                "retry when /readyz answers 200",
            )
        try:
            ns_labels = self.namespaces.labels(req.namespace)
        except Exception as e:
            return self._deny(req, f"cannot read the labels of namespace {req.namespace}: {e}")
        labels = {**workload.pod_labels, **req.labels}
        ctx = RequestContext(
            uid=req.uid,
            cluster=self.judge.cluster,
            region=self.judge.region,
            namespace=req.namespace,
            namespace_labels=ns_labels,
            kind=req.kind,
            name=req.name,
            operation=req.operation,
            user=req.user,
            labels=labels,
            images=workload.images,
        )
        evidence, late, failed = self._gather(index, req, ctx, workload.pull_secrets, started)
        now = datetime.now(UTC)
        decision = evaluate(ctx, evidence, index, now=now, decision_id=str(uuid.uuid4()))
        decision = self._note_failures(decision, ctx, index, late, failed)
        return self._answer(req, decision)

    # -- evidence under a budget -----------------------------------------------------------

    def _gather(
        self,
        index: PolicyIndex,
        req: ParsedRequest,
        ctx: RequestContext,
        pull_secrets: tuple[str, ...],
        started: float,
    ) -> tuple[dict[str, ImageEvidence | None], set[str], dict[str, str]]:
        jobs: dict[str, Future[Lookup]] = {}
        for image in ctx.images:
            eff = index.effective(
                cluster=ctx.cluster,
                region=ctx.region,
                namespace=ctx.namespace,
                namespace_labels=ctx.namespace_labels,
                image=image,
            )
            if eff is None:
                continue  # no policy covers this image: nothing to fetch
            jobs[image] = self._pool.submit(
                self.resolver.lookup,
                image,
                eff.signers,
                namespace=req.namespace,
                pull_secrets=pull_secrets,
            )
        remaining = max(0.0, self.judge.budget_seconds - (time.monotonic() - started))
        wait_futures(list(jobs.values()), timeout=remaining)
        evidence: dict[str, ImageEvidence | None] = {}
        late: set[str] = set()
        failed: dict[str, str] = {}
        for image, job in jobs.items():
            if not job.done():
                late.add(image)
                evidence[image] = None
                self.metrics.budget_exceeded.inc()
                continue
            try:
                found = job.result()
            except AffidavitError as e:
                failed[image] = e.message
                evidence[image] = None
                self.metrics.registry_errors.inc()
                log.warning("evidence lookup for %s failed: %s", image, e.message)
                continue
            except Exception as e:  # a bug must not become a 500 or an admit
                failed[image] = f"{type(e).__name__}: {e}"
                evidence[image] = None
                log.exception("evidence lookup for %s crashed", image)
                continue
            self.metrics.cache.labels(result=found.cache).inc()
            evidence[image] = found.evidence
        return evidence, late, failed

    def _note_failures(
        self,
        decision: Decision,
        ctx: RequestContext,
        index: PolicyIndex,
        late: set[str],
        failed: Mapping[str, str],
    ) -> Decision:
        """Name the budget in denials, and record fail-open admissions as warnings."""
        if not late and not failed:
            return decision
        violations = list(decision.violations)
        added: list[Violation] = []
        for image in [*sorted(late), *sorted(failed)]:
            eff = index.effective(
                cluster=ctx.cluster,
                region=ctx.region,
                namespace=ctx.namespace,
                namespace_labels=ctx.namespace_labels,
                image=image,
            )
            budget = f"{self.judge.budget_seconds:g}s"
            if image in late:
                found = f"evidence lookup for {image} exceeded the {budget} budget"
            else:
                found = f"evidence lookup for {image} failed: {failed[image]}"
            for i, v in enumerate(violations):
                if v.image == image and v.rule == "evidence.unavailable":
                    rule = "evidence.budget" if image in late else v.rule
                    violations[i] = replace(v, rule=rule, found=found)
                    break
            else:
                if eff is not None and eff.fail_open:
                    added.append(
                        Violation(
                            rule="evidence.budget" if image in late else "evidence.unavailable",
                            policy=eff.failure_policy.origin.source,
                            control=eff.failure_policy.origin.control,
                            found=found,
                            expected="verified attestations for the image",
                            fix="admitted because the policy fails open "
                            "(failurePolicy: Ignore); make the registry reachable and redeploy",
                            image=image,
                        )
                    )
        outcome = decision.outcome
        if added and outcome == "allowed":
            outcome = "warned"
        return replace(decision, violations=(*violations, *added), outcome=outcome)

    # -- answers ---------------------------------------------------------------------------

    def _record(self, decision: Decision) -> str | None:
        """Append to the ledger; return a note when buffered; raise LedgerError when full."""
        if self.ledger is None:
            return None
        result = self.ledger.record(decision)
        if result.status == "buffered":
            self.metrics.ledger_buffered.inc()
            return f"{BUFFERED_NOTE} (decision {decision.id})"
        return None

    def _answer(self, req: ParsedRequest, decision: Decision) -> Answer:
        try:
            note = self._record(decision)
        except LedgerError as e:
            decision = replace(decision, outcome="denied")
            self.metrics.decisions.labels(outcome="denied").inc()
            refusal = f"{e.message}; denied because the decision cannot be recorded"
            return Answer(200, review_response(req.uid, allowed=False, message=refusal), decision)
        self.metrics.decisions.labels(outcome=decision.outcome).inc()
        warnings: list[str] = []
        annotations = {DECISION_ANNOTATION: decision.id}
        message: str | None = None
        if decision.outcome == "denied":
            message = admission_message(decision)
        elif decision.outcome == "warned":
            warnings = [v.message for v in decision.violations]
        elif decision.outcome == "audited":
            annotations["violations"] = str(len(decision.violations))
        elif decision.outcome == "excepted" and decision.exception:
            warnings = [f"admitted under exception {decision.exception}"]
            annotations["exception"] = decision.exception
        if note is not None:
            warnings.append(note)
            log.warning(note)
        body = review_response(
            req.uid,
            allowed=decision.allowed,
            message=message,
            warnings=warnings,
            audit_annotations=annotations,
        )
        return Answer(200, body, decision)

    def _deny(self, req: ParsedRequest, message: str) -> Answer:
        self.metrics.decisions.labels(outcome="denied").inc()
        return Answer(200, review_response(req.uid, allowed=False, message=message))

    def too_large(self, head: bytes, size: int) -> Answer:
        """Refuse a review over the size limit (``head``: its first bytes, for the uid)."""
        limit = self.judge.max_body_bytes
        message = (
            f"AdmissionReview of {size} bytes exceeds the webhook's limit of {limit} bytes "
            f"({limit / (1024 * 1024):g} MiB); the object is too large to judge"
        )
        uid = sniff_uid(head)
        self.metrics.decisions.labels(outcome="denied").inc()
        if uid is None:
            return Answer(413, {"error": message})
        return Answer(200, review_response(uid, allowed=False, message=message, code=413))


def sniff_uid(body: bytes) -> str | None:
    """The request uid of an oversized review, found without parsing megabytes of JSON."""
    m = re.search(rb'"uid"\s*:\s*"([0-9A-Za-z-]{1,64})"', body[:65536])
    return m.group(1).decode() if m else None
