"""The evidence stage of a review: each covered image's evidence, looked up fairly under a budget.

``decide`` turns a review into a Decision; between parsing and evaluating sits this stage, the
only one that does I/O on the request's behalf. For every image a policy covers it takes the
resolver's cached answer or submits a lookup to the fair scheduler, waits no longer than the
request's deadline, and sorts what came back into evidence, evidence that is missing (with the
rule, the finding and the fix the denial will quote; late lookups are ``evidence.budget``) and
registries that were themselves unavailable. ``note_unavailable`` then names the unreachable
registry in denials and records fail-open admissions (``failurePolicy: Ignore``) as warnings:
the one place an evidence problem may admit, and only where the policy says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, replace
from functools import partial

from affidavit.admission.metrics import Metrics
from affidavit.admission.resolve import EvidenceResolver, Lookup, Missing, Outcome, Unavailable
from affidavit.admission.schedule import FairScheduler
from affidavit.attestations.evidence import ImageEvidence
from affidavit.policy.decision import Decision, Violation
from affidavit.policy.evaluate import RequestContext
from affidavit.policy.index import PolicyIndex

log = logging.getLogger("affidavit.admission")


class NotWarm(Exception):
    """Judging this review would wait for I/O (a registry, the API server): not on the event
    loop. Raised before anything is submitted, so the review is judged afresh in a thread.
    ``namespace`` and ``uid`` are the review's (the thread it gets is its namespace's turn)."""

    def __init__(self, what: str, *, namespace: str | None = None, uid: str | None = None):
        super().__init__(what)
        self.namespace = namespace
        self.uid = uid


@dataclass(frozen=True)
class Gathered:
    """What the lookups found, by canonical image."""

    #: Verified evidence (None: the image had none, or its lookup did not answer).
    evidence: dict[str, ImageEvidence | None]
    #: ``(rule, found, fix)`` for each image whose evidence is missing or came too late.
    missing: dict[str, tuple[str, str, str]]
    #: The images whose registry was itself unavailable.
    unavailable: dict[str, Unavailable]


def gather(
    index: PolicyIndex,
    ctx: RequestContext,
    pull_secrets: tuple[str, ...],
    *,
    deadline: float,
    budget_seconds: float,
    resolver: EvidenceResolver,
    scheduler: FairScheduler,
    metrics: Metrics,
    warm_only: bool = False,
) -> Gathered:
    """Look the covered images up (fairly, until ``deadline`` on the monotonic clock).

    ``warm_only``: raise ``NotWarm`` instead of submitting a lookup (an image not in the cache).
    """
    jobs: dict[str, Future[Outcome] | Outcome] = {}
    lookups: list[Future[Outcome]] = []
    for image in ctx.images:
        eff = ctx.effective(index, image)
        if eff is None or image in jobs:
            continue  # no policy covers this image: nothing to fetch
        cached = resolver.cached(
            image, eff.signers, index=index, namespace=ctx.namespace, pull_secrets=pull_secrets
        )
        if cached is not None:  # answered from the cache: no lookup thread, no I/O, no wait
            jobs[image] = cached
            continue
        if warm_only:
            raise NotWarm(image, namespace=ctx.namespace, uid=ctx.uid)
        lookup = partial(
            resolver.outcome,
            image,
            eff.signers,
            index=index,
            namespace=ctx.namespace,
            pull_secrets=pull_secrets,
        )
        submitted = scheduler.submit(ctx.namespace, lookup, deadline=deadline)
        jobs[image] = submitted
        lookups.append(submitted)
    if lookups:
        wait_futures(lookups, timeout=max(0.0, deadline - time.monotonic()))
    found = Gathered({}, {}, {})
    for image, job in jobs.items():
        found.evidence[image] = None
        outcome = _outcome(image, job) if isinstance(job, Future) else job
        metrics.inc(metrics.lookups, lookup_result(outcome))
        if isinstance(outcome, Lookup):
            metrics.inc(metrics.cache, outcome.cache)
            found.evidence[image] = outcome.evidence
        elif isinstance(outcome, Unavailable):
            metrics.registry_errors.inc()
            found.unavailable[image] = outcome
        elif outcome.late:
            metrics.budget_exceeded.inc()
            found.missing[image] = (
                "evidence.budget",
                f"evidence lookup for {image} exceeded the {budget_seconds:g}s budget",
                "retry; a slow registry or a busy webhook never makes a policy fail open",
            )
        else:
            found.missing[image] = (
                "evidence.missing",
                f"missing evidence: {outcome.found}",
                outcome.fix,
            )
    return found


def _outcome(image: str, job: Future[Outcome]) -> Outcome:
    if not job.done() or job.cancelled():
        job.cancel()  # queued: never runs; running: its registry calls end at the deadline
        return Missing(image, "", "", late=True)
    try:
        return job.result()
    except Exception as e:  # a bug must not become a 500 or an admit
        log.exception("evidence lookup for %s crashed", image)
        found = f"the lookup failed ({type(e).__name__})"
        return Missing(image, found, "retry; the webhook's log has the detail")


def note_unavailable(
    decision: Decision,
    ctx: RequestContext,
    index: PolicyIndex,
    unavailable: Mapping[str, Unavailable],
) -> Decision:
    """Name the unreachable registry in denials; record fail-open admissions as warnings."""
    if not unavailable:
        return decision
    violations = list(decision.violations)
    added: list[Violation] = []
    for image in sorted(unavailable):
        found = unavailable[image].found
        for i, v in enumerate(violations):
            if v.image == image and v.rule == "evidence.unavailable":
                violations[i] = replace(v, found=found)
                break
        else:
            eff = ctx.effective(index, image)
            if eff is not None and eff.fail_open:
                added.append(
                    Violation(
                        rule="evidence.unavailable",
                        policy=eff.failure_policy.origin.source,
                        control=eff.failure_policy.origin.control,
                        found=found,
                        expected="verified attestations for the image",
                        fix="admitted because the registry itself is unavailable and the "
                        "policy fails open (failurePolicy: Ignore); redeploy once it is back",
                        image=image,
                    )
                )
    outcome = decision.outcome
    if added and outcome == "allowed":
        outcome = "warned"
    return replace(decision, violations=(*violations, *added), outcome=outcome)


def lookup_result(outcome: Outcome) -> str:
    """The ``result`` label of ``affidavit_evidence_lookups``."""
    if isinstance(outcome, Lookup):
        return "evidence"
    if isinstance(outcome, Unavailable):
        return "unavailable"
    return "late" if outcome.late else "missing"
