"""One AdmissionReview in, one answer out: images → digests → evidence → Decision → ledger.

This is the webhook without HTTP, so the app stays a thin shell and tests can drive the whole
judgement. It owns the rules that are about admission rather than policy: the per-request time
budget (the apiserver gives up at its timeout; an answer after that is worthless, so a slow
lookup fails closed), the cap on images per request, which evidence problems may fail open (only
a registry that is itself unavailable, where the policy says Ignore), the ledger's buffering, and
the shape of the response for each mode (a denial's message, Warn's warnings, Audit's annotations).
The evidence stage itself (lookups under the budget, the fail-open note) is ``admission.gather``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from affidavit import defaults
from affidavit.admission.acting import Acting
from affidavit.admission.gather import NotWarm, gather, note_unavailable
from affidavit.admission.kinds import pod_source
from affidavit.admission.metrics import Metrics
from affidavit.admission.owners import OwnerChain, OwnerMatch, controller_ref
from affidavit.admission.policy_source import NamespaceLabels, PolicySource
from affidavit.admission.resolve import EvidenceResolver
from affidavit.admission.review import (
    AdmissionReview,
    MalformedReview,
    ParsedRequest,
    parse_review,
    review_response,
)
from affidavit.admission.schedule import FairScheduler
from affidavit.admission.verdicts import Verdicts
from affidavit.admission.workloads import WorkloadImages, extract_images
from affidavit.attestations.reference import canonical_image
from affidavit.errors import InputError, LedgerError
from affidavit.ids import new_id
from affidavit.ledger import BUFFERED_NOTE, BufferedLedger, RecordResult
from affidavit.policy.combine import EffectivePolicy
from affidavit.policy.decision import Caller, Decision, NotJudged
from affidavit.policy.evaluate import RequestContext, exceptions_reaching
from affidavit.policy.index import PolicyIndex
from affidavit.policy.messages import admission_message, admission_warnings
from affidavit.policy.presets import UnmatchedImages
from affidavit.printable import printable

log = logging.getLogger("affidavit.admission")

DECISION_ANNOTATION = "decision"
UNAUTHENTICATED = Caller()


@dataclass(frozen=True)
class Answer:
    """What the app sends: an HTTP status and a JSON body."""

    status: int
    body: AdmissionReview | dict[str, Any]
    decision: Decision | None = None


@dataclass(frozen=True)
class Judged:
    """A review judged and not yet recorded or answered (``Webhook.prepare``)."""

    req: ParsedRequest
    decision: Decision
    #: What the answer says of the object's images this decision did not judge (its owner's
    #: admission, or an earlier one of the Pod's); None when it judged them all.
    scope_note: str | None = None


@dataclass(frozen=True)
class Unjudged:
    """A review parsed and put in canonical form on the event loop whose evidence needs a
    lookup: judged from here in a thread (``Webhook.finish``), not parsed again."""

    req: ParsedRequest
    ctx: RequestContext
    pull_secrets: tuple[str, ...]
    index: PolicyIndex
    started: float
    decision_id: str
    scope: Scope


class ColdReview(NotWarm):
    """``NotWarm`` raised by the evidence stage, with the review as far as it was judged."""

    def __init__(self, unjudged: Unjudged) -> None:
        super().__init__(unjudged.req.uid, namespace=unjudged.req.namespace, uid=unjudged.req.uid)
        self.unjudged = unjudged


@dataclass(frozen=True)
class Judge:
    cluster: str
    region: str
    budget_seconds: float = defaults.BUDGET_SECONDS
    max_body_bytes: int = defaults.MAX_BODY_BYTES
    max_images: int = defaults.MAX_IMAGES_PER_REQUEST
    unmatched_images: UnmatchedImages = "Warn"  # what an image no policy matches gets


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
    per_namespace: int | None = None  # lookup threads one namespace may hold (workers // 4)
    owners: OwnerChain | None = None  # None: every child of a controller is judged
    #: Who of an exception's requesters may act as the deployer (None: nobody is asked, and
    #: ``separateRequester`` compares names alone).
    acting: Acting | None = None

    def __post_init__(self) -> None:
        self._scheduler = FairScheduler(self.workers, self.per_namespace)
        self.verdicts = Verdicts()  # policy.evaluate, remembering what no clock can change

    def close(self) -> None:
        self._scheduler.close()
        if self.owners is not None:
            self.owners.close()

    @property
    def scheduler(self) -> FairScheduler:
        """The lookups' threads; the pinning webhook shares them (and their fairness)."""
        return self._scheduler

    # -- entry point -----------------------------------------------------------------------

    def handle(
        self, body: bytes, caller: Caller = UNAUTHENTICATED, started: float | None = None
    ) -> Answer:
        """Judge one review; ``caller`` (the verified client certificate, if the app required
        one) is recorded in the decision's snapshot. ``started``: when the review arrived, if
        it waited for a thread (its budget runs from then, not from now)."""
        started = time.monotonic() if started is None else started
        try:
            judged = self.prepare(body, started, caller)
            return judged if isinstance(judged, Answer) else self._answer(judged)
        finally:
            self.metrics.duration.observe(time.monotonic() - started)

    def prepare(
        self, body: bytes, started: float, caller: Caller, *, warm_only: bool = False
    ) -> Answer | Judged:
        """Judge one review: its answer, or its decision still to be recorded (``recorded``).

        ``warm_only``: raise ``NotWarm`` where judging would wait for I/O (an image's evidence
        not in the cache, the namespace's labels or a controller owner to ask the API server
        for), before anything waits; then nothing was counted or recorded for the review. An
        image's evidence is ``ColdReview``, which carries the review for ``finish``.
        """
        if len(body) > self.judge.max_body_bytes:
            return self.too_large(body[:65536], len(body))
        try:
            req = parse_review(body)
            judged = pod_source(req.group, req.kind, req.sub_resource) is not None
            if req.operation not in ("CREATE", "UPDATE") or not judged:
                return Answer(200, review_response(req.uid, allowed=True))
            assert req.object is not None
            workload = extract_images(req.kind, req.object, uid=req.uid)
        except MalformedReview as e:
            if e.uid is None:
                return Answer(400, {"error": e.message})
            return Answer(200, review_response(e.uid, allowed=False, message=e.message, code=400))
        routine = self._already_judged(req, workload, started, warm_only)
        if isinstance(routine, Answer):
            return routine
        lineage: tuple[tuple[str, str], ...] = ()
        if routine is not None and not routine.confirmed:
            lineage = routine.lineage
            routine = None
        scope = judged_scope(req, workload, routine)
        index = self.policy.current()
        if index is None:
            return self._deny(
                req,
                "no policy index is loaded yet (the webhook is not ready); "
                "retry when /readyz answers 200",
            )
        ns_labels = self.namespaces.cached(req.namespace) if warm_only else None
        if warm_only and ns_labels is None:
            raise NotWarm(req.namespace, namespace=req.namespace, uid=req.uid)
        try:
            if ns_labels is None:
                ns_labels = self.namespaces.labels(req.namespace)
        except Exception as e:
            return self._deny(req, f"cannot read the labels of namespace {req.namespace}: {e}")
        ctx = self.context(req, workload, ns_labels, scope.judged, caller=caller, lineage=lineage)
        try:  # one name per image from here on: matching, evidence, ledger, messages
            ctx = ctx.canonical()
            if req.kind == "Pod":  # the tags it brings in were pinned, as far as that went
                before = pod_images_before(req)
                ctx = replace(ctx, expect_pinned=frozenset(
                    canonical_image(i) for i in scope.judged if "@" not in i and i not in before
                ))  # fmt: skip
        except InputError as e:
            return self._deny(req, f"{e.message}, so it cannot be judged; fix: {e.hint}")
        distinct = len(set(ctx.images))
        if distinct > self.judge.max_images:
            return self._deny(
                req,
                f"the {req.kind} names {distinct} distinct images, more than the "
                f"{self.judge.max_images} the webhook judges per request; split it into smaller "
                "workloads or raise webhook.maxImagesPerRequest (--max-images-per-request)",
            )
        decision_id = new_id()
        try:
            decision = self.judge_context(
                ctx,
                workload.pull_secrets,
                index,
                started=started,
                decision_id=decision_id,
                warm_only=warm_only,
            )
        except NotWarm:  # an image to look up: the rest is judged in a thread, from here
            unjudged = Unjudged(req, ctx, workload.pull_secrets, index, started, decision_id, scope)
            raise ColdReview(unjudged) from None
        return Judged(req, scope.record(decision), scope.note)

    def finish(self, unjudged: Unjudged) -> Answer:
        """Judge, record and answer a review that ``prepare(warm_only=True)`` left at its
        evidence stage (``ColdReview``): what ``handle`` does from there, under the budget that
        started when the review arrived."""
        try:
            decision = self.judge_context(
                unjudged.ctx,
                unjudged.pull_secrets,
                unjudged.index,
                started=unjudged.started,
                decision_id=unjudged.decision_id,
            )
            scope = unjudged.scope
            return self._answer(Judged(unjudged.req, scope.record(decision), scope.note))
        finally:
            self.metrics.duration.observe(time.monotonic() - unjudged.started)

    def context(
        self,
        req: ParsedRequest,
        workload: WorkloadImages,
        ns_labels: Mapping[str, str],
        images: tuple[str, ...],
        *,
        caller: Caller = UNAUTHENTICATED,
        lineage: tuple[tuple[str, str], ...] = (),
    ) -> RequestContext:
        """What the policy engine judges of ``req``: ``images`` of ``workload`` (as written)."""
        return RequestContext(
            uid=req.uid,
            cluster=self.judge.cluster,
            region=self.judge.region,
            namespace=req.namespace,
            namespace_labels=ns_labels,
            kind=req.kind,
            name=req.name,
            operation=req.operation,
            user=req.user,
            groups=req.groups,
            labels={**workload.pod_labels, **req.labels},
            images=images,
            unmatched_images=self.judge.unmatched_images,
            caller=caller,
            lineage=lineage,
        )

    def judge_context(
        self,
        ctx: RequestContext,
        pull_secrets: tuple[str, ...],
        index: PolicyIndex,
        *,
        started: float,
        decision_id: str,
        now: datetime | None = None,
        warm_only: bool = False,
    ) -> Decision:
        """The judgement of one canonical workload: evidence under the budget, evaluation, the
        unavailable registries named. Records and answers nothing: admission does that, and the
        operator's re-check of running workloads (``affidavit.admission.recheck``) calls this
        same method, so a running workload is judged as its admission would be now (by the
        digests it runs: no tag there waits to be pinned, ``RequestContext.expect_pinned``)."""
        found = gather(
            index,
            ctx,
            pull_secrets,
            deadline=started + self.judge.budget_seconds,
            budget_seconds=self.judge.budget_seconds,
            resolver=self.resolver,
            scheduler=self._scheduler,
            metrics=self.metrics,
            warm_only=warm_only,
        )
        now = now or datetime.now(UTC)
        decision = self.verdicts.evaluate(
            ctx, found.evidence, index, now=now, decision_id=decision_id, missing=found.missing
        )
        deadline = started + self.judge.budget_seconds
        acting = self._acting_requesters(ctx, index, decision, now, deadline, warm_only)
        if acting:  # their exceptions are the deployer's own: judged again without them
            decision = self.verdicts.evaluate(
                replace(ctx, acts_as=acting),
                found.evidence,
                index,
                now=now,
                decision_id=decision_id,
                missing=found.missing,
            )
        return note_unavailable(decision, ctx, index, found.unavailable)

    def _acting_requesters(
        self,
        ctx: RequestContext,
        index: PolicyIndex,
        decision: Decision,
        now: datetime,
        deadline: float,
        warm_only: bool,
    ) -> tuple[tuple[str, str], ...]:
        """(requester, why) for the requesters of the exceptions ``decision`` used, under
        ``separateRequester``, who count as the deployer (``admission.acting``)."""
        if self.acting is None or decision.outcome != "excepted":
            return ()
        separated = any(
            (eff := ctx.effective(index, image)) is not None
            and eff.exception_separation is not None
            for image in ctx.images
        )
        if not separated:
            return ()
        used = {e.key for e in decision.snapshot.exceptions} if decision.snapshot else set()
        requesters = [
            (e.requested_by, e.requested_groups)
            for image in ctx.images
            for e in exceptions_reaching(index, ctx, image, now)
            if e.key in used and e.requested_by is not None and e.requested_by != ctx.user
        ]
        found = self.acting.who_counts_as(
            ctx.user, ctx.groups, requesters, deadline=deadline, remembered_only=warm_only
        )
        if found is None:  # an answer to ask the API server for: not on the event loop
            raise NotWarm(ctx.name, namespace=ctx.namespace, uid=ctx.uid)
        return found

    # -- what was already judged -------------------------------------------------------------

    def _already_judged(
        self, req: ParsedRequest, workload: WorkloadImages, started: float, warm_only: bool
    ) -> Answer | OwnerMatch | None:
        """Admit, with no new decision, what runs only images that were judged already.

        An UPDATE that leaves the set of images as it was (scale, labels, finalizers, a
        controller's bookkeeping) and an object whose controller owner on the API server runs
        the same images (``OwnerChain``). Policies that tightened since apply to new rollouts;
        running workloads are reported, not broken. A Pod that runs its owner's images and
        more (a mesh's injected proxy, a debug container) returns its ``OwnerMatch``: only the
        images beyond the owner's are judged. Anything unsure returns None: judge it all.
        """
        reason: str | None = None
        if (
            req.operation == "UPDATE"
            and images_unchanged(req, workload)
            and not self._drops_required_label(req, workload, warm_only)
        ):
            reason = "unchanged"
            note = "the update brings in no image the object did not run"
        elif self.owners is not None:
            assert req.object is not None
            if warm_only and controller_ref(req.kind, req.object) is not None:
                # the owner is read from the API server
                raise NotWarm(req.name, namespace=req.namespace, uid=req.uid)
            remaining = self.judge.budget_seconds - (time.monotonic() - started)
            match = self.owners.match(
                req.kind,
                req.namespace,
                req.object,
                workload.images,
                timeout=min(self.owners.check_seconds, remaining / 2),
                outcome=lambda result: self.metrics.inc(self.metrics.owner_checks, result),
            )
            if match is not None and not match.confirmed:
                return match  # judged whole; exceptions naming its lineage reach it
            if match is not None and not self._unpinned_tag(req, workload):
                if match.extras:
                    self.metrics.inc(self.metrics.already_judged, "owner-partial")
                    return match
                reason = "owner"
                note = f"runs the images of its admitted owner {match.owner}"
        if reason is None:
            return None
        self.metrics.inc(self.metrics.already_judged, reason)
        return Answer(
            200, review_response(req.uid, allowed=True, audit_annotations={"admitted": note})
        )

    def _drops_required_label(
        self, req: ParsedRequest, workload: WorkloadImages, warm_only: bool
    ) -> bool:
        """Whether an UPDATE removes (or empties) a label a policy on its images requires.

        ``require.ownerLabel`` and ``escalationLabel`` name who answers for a workload; an
        update that keeps the images but drops such a label would leave it running with no
        owner, so it is judged. Other label changes stay routine, even on a workload admitted
        before a policy asked for the label. Anything unsure counts as dropped.
        """
        assert req.old_object is not None  # images_unchanged read it
        try:
            before = extract_images(req.kind, req.old_object, uid=req.uid).pod_labels
        except MalformedReview:
            return True
        old_meta = req.old_object.get("metadata")
        old_labels = old_meta.get("labels") if isinstance(old_meta, Mapping) else None
        if isinstance(old_labels, Mapping):
            before = {**before, **{str(k): str(v) for k, v in old_labels.items()}}
        after = {**workload.pod_labels, **req.labels}
        dropped = {key for key, value in before.items() if value and not after.get(key)}
        if not dropped:
            return False
        effective = self._effective_policies(req, workload.images, warm_only)
        if effective is None:
            return True
        return any(
            r.value in dropped
            for eff in effective
            if eff is not None
            for r in (*eff.owner_labels, *eff.escalation_labels)
        )

    def _unpinned_tag(self, req: ParsedRequest, workload: WorkloadImages) -> bool:
        """Whether a Pod runs a tag a policy covers as written, not pinned to a digest.

        The pinning webhook pins every such tag of a new Pod, but only as far as its lookup
        goes, and the request decides whether that fails (an imagePullSecret without registry
        credentials, a flood that runs out its namespace's threads) as may the registry. The
        owner's decision says nothing about what the tag names now (it may have moved to a
        digest nobody judged), so such a Pod is judged. Anything unsure counts as a tag.
        """
        if req.kind != "Pod":
            return False  # templates keep their tags; their Pods are pinned or judged
        tags = [image for image in workload.images if "@" not in image]
        if not tags:
            return False
        # reached only off the event loop: a warm review of a controller's Pod went to a thread
        # for its owner (NotWarm) before this is asked
        effective = self._effective_policies(req, tuple(tags), warm_only=False)
        return effective is None or any(eff is not None for eff in effective)

    def _effective_policies(
        self, req: ParsedRequest, images: tuple[str, ...], warm_only: bool
    ) -> list[EffectivePolicy | None] | None:
        """The effective policy of each of ``images`` in the request's namespace (None for an
        image no policy covers); None when the index, the namespace or an image cannot be read
        (the caller then judges the object).

        Raises:
            NotWarm: ``warm_only`` and the namespace's labels are not cached (reading them
                blocks on the API server: the review goes to a thread).
        """
        index = self.policy.current()
        if index is None:
            return None
        if warm_only and self.namespaces.cached(req.namespace) is None:
            raise NotWarm(req.namespace, namespace=req.namespace, uid=req.uid)
        try:
            ns_labels = self.namespaces.labels(req.namespace)
            return [
                index.effective(
                    cluster=self.judge.cluster,
                    region=self.judge.region,
                    namespace=req.namespace,
                    namespace_labels=ns_labels,
                    image=image,
                )
                for image in images
            ]
        except Exception:  # the namespace or a reference cannot be read
            return None

    # -- answers ---------------------------------------------------------------------------

    def _answer(self, judged: Judged) -> Answer:
        """Record (unless a dry run), waiting for the ledger, and answer."""
        req, decision = judged.req, judged.decision
        try:
            result = None if req.dry_run or self.ledger is None else self.ledger.record(decision)
        except LedgerError as e:
            return self.unrecorded(judged, e)
        return self.recorded(judged, result)

    def unrecorded(self, judged: Judged, e: LedgerError) -> Answer:
        """The answer to a review whose decision can be neither stored nor buffered: denied."""
        req, decision = judged.req, replace(judged.decision, outcome="denied")
        self.metrics.ledger_write_failures.inc()
        self.metrics.decided("denied", req.namespace)
        refusal = f"{e.message}; denied because the decision cannot be recorded"
        return Answer(200, review_response(req.uid, allowed=False, message=refusal), decision)

    def recorded(self, judged: Judged, result: RecordResult | None) -> Answer:
        """The answer once the decision is in the ledger or its buffer (``result``; None for a
        dry run or no ledger); a dry run is judged and answered the same.

        ``dryRun`` is the apiserver's promise that the object will not be persisted, so it only
        skips side effects (ledger row, hence Events and PolicyReports), never the judgement.
        A stored decision's annotations carry its chain position (``ledger``: seq and hash),
        which the apiserver audit log keeps outside the database.
        """
        req, decision = judged.req, judged.decision
        annotations = {DECISION_ANNOTATION: decision.id}
        if judged.scope_note is not None:
            annotations["scope"] = judged.scope_note
        note = None
        if result is not None and result.status == "buffered":
            self.metrics.ledger_buffered.inc()
            note = f"{BUFFERED_NOTE} (decision {decision.id})"
        elif result is not None and result.record is not None:
            annotations["ledger"] = f"seq={result.record.seq} hash={result.record.hash}"
        self.metrics.decided(
            decision.outcome, req.namespace, tuple((v.rule, v.policy) for v in decision.violations)
        )
        warnings: list[str] = []
        message: str | None = None
        if decision.outcome == "denied":
            message = admission_message(decision, recorded=not req.dry_run)
            if judged.scope_note is not None:
                message = f"{message}\n{judged.scope_note}"
        elif decision.outcome == "warned":
            warnings = admission_warnings(decision, recorded=not req.dry_run)
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
        self.metrics.decided("denied", req.namespace)
        return Answer(200, review_response(req.uid, allowed=False, message=message))

    def too_large(self, head: bytes, size: int) -> Answer:
        """Refuse a review over the size limit (``head``: its first bytes, for the uid)."""
        limit = self.judge.max_body_bytes
        message = (
            f"AdmissionReview of {size} bytes exceeds the webhook's limit of {limit} bytes "
            f"({limit / (1024 * 1024):g} MiB); the object is too large to judge"
        )
        uid = sniff_uid(head)
        self.metrics.decided("denied", None)
        if uid is None:
            return Answer(413, {"error": message})
        return Answer(200, review_response(uid, allowed=False, message=message, code=413))


@dataclass(frozen=True)
class Scope:
    """The images a review judges; those it does not, and why; what its answer says of them."""

    judged: tuple[str, ...]
    not_judged: tuple[NotJudged, ...] = ()
    note: str | None = None  # None: every image is judged

    def record(self, decision: Decision) -> Decision:
        """``decision`` with the images it did not judge in its (hashed) snapshot."""
        if not self.not_judged or decision.snapshot is None:
            return decision
        return replace(decision, snapshot=replace(decision.snapshot, not_judged=self.not_judged))


def judged_scope(req: ParsedRequest, workload: WorkloadImages, owner: OwnerMatch | None) -> Scope:
    """The images a review judges, those it does not and why, and what its answer says.

    A Pod that runs its verified owner's images and more (``owner``) is judged on the more. A
    Pod's UPDATE is judged on the images it brings in: the others run already, admitted when
    the Pod was (only one container's image changes, or an ephemeral container is added;
    nothing else restarts). A workload's UPDATE is a new rollout, judged whole.
    """
    images = workload.images if owner is None else owner.extras
    ran = pod_images_before(req)
    judged = tuple(image for image in images if image not in ran)
    if judged == workload.images:
        return Scope(judged)
    parts = []
    owned: list[str] = []
    if owner is not None:
        owned = [image for image in workload.images if image not in owner.extras]
        parts.append(f"{_listed(owned)} run(s) on the admission of its owner {owner.owner}")
    if ran_before := [image for image in images if image in ran]:
        parts.append(f"{_listed(ran_before)} ran in the Pod already")
    parts.append(f"judged here: {_listed(judged)}")
    not_judged = tuple(
        [NotJudged(image, f"runs on the admission of its owner {owner.owner}") for image in owned]
        if owner is not None
        else []
    ) + tuple(NotJudged(image, "ran in the Pod before this update") for image in ran_before)
    return Scope(judged, not_judged, printable("; ".join(parts)))


def _listed(images: Sequence[str], most: int = 8) -> str:
    """Images named in an answer's note: a Pod may run hundreds; the ledger has them all."""
    shown = ", ".join(images[:most])
    return shown if len(images) <= most else f"{shown} and {len(images) - most} more"


def pod_images_before(req: ParsedRequest) -> frozenset[str]:
    """The images a Pod ran before its UPDATE (empty for anything else, or an old object that
    cannot be read: then every image is judged)."""
    if req.kind != "Pod" or req.operation != "UPDATE" or req.old_object is None:
        return frozenset()
    try:
        return frozenset(extract_images(req.kind, req.old_object, uid=req.uid).images)
    except MalformedReview:
        return frozenset()


def images_unchanged(req: ParsedRequest, workload: WorkloadImages) -> bool:
    """Whether an UPDATE brings in no image its old object did not run (every list the
    extractor reads; a workload's must run the same set). An old object that cannot be read
    counts as changed: the update is judged."""
    if req.old_object is None:
        return False
    try:
        before = set(extract_images(req.kind, req.old_object, uid=req.uid).images)
    except MalformedReview:
        return False
    after = set(workload.images)
    return after <= before if req.kind == "Pod" else after == before


def sniff_uid(body: bytes) -> str | None:
    """The request uid of an oversized review, found without parsing megabytes of JSON."""
    m = re.search(rb'"uid"\s*:\s*"([0-9A-Za-z-]{1,64})"', body[:65536])
    return m.group(1).decode() if m else None
