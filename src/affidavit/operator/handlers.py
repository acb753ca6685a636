"""kopf handlers for the three policy CRDs, and the reconciler that turns them into the index.

Any change to an AccountabilityPolicy, RegionPolicy or AccountabilityException (create, update,
delete, or the listing kopf does when it resumes) marks the reconciler dirty. The reconciler is
level-triggered: it lists every current object of the three kinds, keeps that snapshot in
memory, compiles the whole index (``PolicyIndex.from_objects``), publishes it to the ConfigMap
``affidavit-policy-index`` when its digest changed, and writes each object's status (Ready,
observedGeneration, the compiled rules or the validation error; Active/Expired for exceptions).

Why list instead of folding watch events into a cache: a partial view (kopf's first listing
arrives one object at a time) would publish an index missing some policies, i.e. a *weaker*
policy. A full list is one consistent view, so the published index is never weaker than the
objects in the cluster. The same loop is the exception timer: it wakes at the next ``expiresAt``
and republishes the index without the expired exception.

Why not kopf's indices (``@kopf.index``), which would spare the three LISTs: they give the
"complete view" guarantee only once. kopf holds its handlers back until the *first* listing of
every indexed kind is in, but after a watch expires (``410 Gone``) it lists again and reports
the objects it finds, never the ones deleted in the gap: an ``AccountabilityException`` deleted
then would stay in the index and keep admitting workloads, a weaker policy than the cluster's.
Nor would the guarantee reach this loop, which is not a kopf handler (the expiry timer and the
periodic resync run without any event). Events are coalesced by the dirty flag, so a burst of
changes costs one listing, not one per event.

The handlers use kopf's low-level event handlers, so kopf needs no finalizers and no
annotations on the objects: the operator's only write to its CRDs is ``patch`` on ``/status``.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kopf

from affidavit.errors import AffidavitError
from affidavit.names import GROUP, INDEX_CONFIGMAP, INDEX_KEY, VERSION
from affidavit.operator import kube, supervise
from affidavit.operator.readiness import Readiness
from affidavit.policy import budget, health
from affidavit.policy.index import PolicyIndex
from affidavit.policy.lifetime import DEFAULT_EXCEPTION_MAX_DAYS
from affidavit.policy.model import (
    KIND_EXCEPTION,
    KIND_POLICY,
    KIND_REGION,
    AccountabilityPolicySpec,
    EvidenceRules,
    RegionPolicySpec,
    Require,
    with_policy_defaults,
)
from affidavit.policy.signer_scope import open_signers
from affidavit.policy.stored import Stored, left_out, object_key

log = logging.getLogger(__name__)

DIGEST_ANNOTATION = "affidavit.dev/index-digest"
KINDS = (KIND_POLICY, KIND_REGION, KIND_EXCEPTION)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _rfc3339(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expires_at(obj: Mapping[str, Any]) -> datetime.datetime | None:
    value = (obj.get("spec") or {}).get("expiresAt")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def describe_require(require: Require) -> list[str]:
    """The requirements of one ``require`` block, one short sentence each."""
    rules: list[str] = []
    if require.provenance is not None and require.provenance.required:
        age = require.provenance.max_age_days
        rules.append("provenance required" + (f" (at most {age} days old)" if age else ""))
    for tier, t in sorted(require.tiers.items()):
        parts = [
            f"{n} {what}"
            for n, what in (
                (t.approvals, "approvals"),
                (t.independent_approvals, "independent approvals"),
                (t.human_approvals, "human approvals"),
            )
            if n
        ]
        if t.security_review:
            parts.append("security review")
        if t.reviewer_groups:
            parts.append("reviewer from " + ", ".join(t.reviewer_groups))
        scope = "AI-touched" if t.applies_to == "ai" else "all"
        rules.append(f"tier {tier} ({scope} changes): " + (", ".join(parts) or "no review"))
    if require.allowed_tools is not None:
        rules.append("AI tools allowed: " + (", ".join(require.allowed_tools) or "none"))
    flags = (
        (require.require_tool_details, "AI tool, model and version recorded"),
        (require.treat_unknown_as_ai, "undeclared commits count as AI-involved"),
        (require.consistent_revision, "one source revision across attestations"),
        (require.certified_source, "keyless statements name the source their certificate names"),
        (require.platform_review, "approvals recorded by a review platform, not commit trailers"),
        (
            require.review_covers_commits,
            "the reviewed change request holds the commits needing review",
        ),
        (require.require_digest, "images pinned by digest"),
    )
    rules += [text for on, text in flags if on]
    for label, what in ((require.owner_label, "owner"), (require.escalation_label, "escalation")):
        if label:
            rules.append(f"workload label {label} names the {what}")
    return rules


def compiled_summary(kind: str, spec: Any, cluster: str, region: str) -> dict[str, Any]:
    """What an object contributes, in words, and whether it applies to this cluster."""
    if isinstance(spec, AccountabilityPolicySpec):
        return {
            "mode": spec.mode,
            "jurisdictions": list(spec.jurisdictions),
            "rules": describe_require(with_policy_defaults(spec.require)),
            "appliesToThisCluster": health.applies_here(spec, cluster, region),
        }
    if isinstance(spec, RegionPolicySpec):
        summary: dict[str, Any] = {
            "jurisdictions": list(spec.jurisdictions),
            "rules": describe_require(spec.require),
            "appliesToThisCluster": health.applies_here(spec, cluster, region),
        }
        if spec.evidence is not None:
            summary["evidence"] = describe_evidence(spec.evidence)
        return summary
    return {}


def describe_evidence(evidence: EvidenceRules) -> list[str]:
    """A RegionPolicy's evidence rules in words, each saying whether admission checks it."""
    out = []
    if evidence.residency is not None:
        out.append(
            f"evidence kept in {evidence.residency.lower()}: images only from registries placed "
            "there (checked at admission)"
        )
    out += [
        f"{d.registry} stores data in {d.location.lower()}" for d in evidence.registry_locations
    ]
    if evidence.retention_days is not None:
        out.append(
            f"decisions kept at least {evidence.retention_days} days (not checked at admission; "
            "the audit report shows whether the ledger removed any)"
        )
    if evidence.pseudonymous_identities:
        out.append(
            "people named only by pseudonyms in the provenance and review evidence (checked at "
            "admission)"
        )
    if evidence.pseudonym_key_ids:
        out.append(
            f"pseudonyms only of key {' or '.join(evidence.pseudonym_key_ids)} (checked at "
            "admission)"
        )
    return out


def ready_condition(
    ok: bool, reason: str, message: str, generation: int | None, previous: Mapping[str, Any]
) -> dict[str, Any]:
    """A Ready condition; ``lastTransitionTime`` moves only when the status flips."""
    return condition("Ready", ok, reason, message, generation, previous)


def condition(
    kind: str,
    ok: bool,
    reason: str,
    message: str,
    generation: int | None,
    previous: Mapping[str, Any],
) -> dict[str, Any]:
    """A condition of type ``kind``; ``lastTransitionTime`` moves only when the status flips."""
    status = "True" if ok else "False"
    old = next((c for c in previous.get("conditions") or [] if c.get("type") == kind), None)
    since = old.get("lastTransitionTime") if old is not None else None
    if old is None or old.get("status") != status or not since:
        since = _rfc3339(_now())
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }


#: The least time between two reads of the served CRD schemas (one small OpenAPI document).
CRDS_CHECK_EVERY = datetime.timedelta(seconds=10)


@dataclass
class Snapshot:
    """The objects of the last reconcile, by kind, as listed from the API."""

    objects: dict[str, list[kube.KubeObject]] = field(default_factory=dict)
    index: PolicyIndex | None = None


@dataclass
class Reconciler:
    """Compiles, publishes and reports status; see the module docstring."""

    api: kube.Kube
    namespace: str
    cluster: str = ""
    region: str = ""
    resync: datetime.timedelta = datetime.timedelta(minutes=5)
    snapshot: Snapshot = field(default_factory=Snapshot)
    exception_max_days: int = DEFAULT_EXCEPTION_MAX_DAYS
    readiness: Readiness | None = None
    #: Only the replica holding the operator Lease publishes (see affidavit.operator.leader).
    is_leader: Callable[[], bool] = lambda: True
    #: Told each compiled index (every replica; the re-check acts only on the leader's).
    on_index: Callable[[PolicyIndex], None] | None = None
    #: Why the served CRDs are older than this version's, or None (``crd_drift.check``); asked
    #: at a reconcile when CRDS_CHECK_EVERY (or the resync period, if shorter) has passed since
    #: the last answer, so applying the CRDs is noticed at the next change or resync.
    crds_check: Callable[[], str | None] | None = None
    #: The least time between two passes. Anyone who may edit an exception in their namespace
    #: may edit it in a loop; each edit is a new index (its generation is in it): a rewrite of a
    #: ConfigMap of up to 900 KiB, every webhook's re-parse and emptied verdict cache, and a
    #: cluster-wide re-check. Edits closer than this are taken in one pass (its list sees all).
    min_pass_gap: float = 2.0
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)
    _crds_checked: datetime.datetime | None = None
    _last_pass: float | None = None

    def mark_dirty(self) -> None:
        self._dirty.set()

    def desired_status(
        self, kind: str, obj: kube.KubeObject, index: PolicyIndex, now: datetime.datetime
    ) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        generation = meta.get("generation")
        previous = obj.get("status") or {}
        error = index.errors.get(object_key(kind, obj))
        status: dict[str, Any] = {"observedGeneration": generation}
        if kind == KIND_EXCEPTION:
            expiry = expires_at(obj)
            expired = expiry is not None and expiry <= now
            status["phase"] = "Expired" if expired else ("Invalid" if error else "Active")
            if expired and error is None:
                assert expiry is not None
                status["conditions"] = [
                    ready_condition(
                        False,
                        "Expired",
                        f"expired at {_rfc3339(expiry)}; it no longer admits workloads",
                        generation,
                        previous,
                    )
                ]
                return status
        # Fields of newer CRDs left out: the rest of the spec is in force (``parse_object``).
        without = error if error is not None and left_out(error) else None
        if error is not None and without is None:
            status["conditions"] = [ready_condition(False, "Invalid", error, generation, previous)]
            status["compiled"] = None
            return status
        stored: Sequence[Stored[Any]]
        if kind == KIND_POLICY:
            stored = index.policies
        elif kind == KIND_REGION:
            stored = index.region_policies
        else:
            stored = index.exceptions
        spec = next(
            (
                s.spec
                for s in stored
                if s.name == meta.get("name") and s.namespace == meta.get("namespace")
            ),
            None,
        )
        message = "compiled into the policy index"
        if kind == KIND_EXCEPTION:
            expiry = expires_at(obj)
            message = f"active until {_rfc3339(expiry)}" if expiry else message
        ready = ready_condition(True, "Compiled", message, generation, previous)
        problems: list[tuple[str, str]] = []  # (reason, why): in force, but not as meant
        if without is not None:
            problems.append(("FieldsLeftOut", without))
        if isinstance(spec, AccountabilityPolicySpec | RegionPolicySpec):
            source = f"{kind}/{meta.get('name')}"
            lacking = health.missing_groups(index, spec.require, spec.jurisdictions, source)
            if lacking is not None:  # fail closed: every change that rule covers is denied
                problems.append(("GroupUndefined", lacking))
            evidence = spec.evidence if isinstance(spec, RegionPolicySpec) else None
            unplaced = (
                health.missing_locations(index, evidence, spec.jurisdictions, source, self.region)
                if health.applies_here(spec, self.cluster, self.region)
                else None
            )
            if unplaced is not None:  # fail closed: every image it covers is denied
                problems.append(("ResidencyUndeclared", unplaced))
            plain = (
                health.plain_groups(
                    index, spec.require, spec.jurisdictions, evidence, source, self.region
                )
                if health.applies_here(spec, self.cluster, self.region)
                else None
            )
            if plain is not None:  # fail closed: every change that rule covers is denied
                problems.append(("GroupNotPseudonymous", plain))
        if isinstance(spec, AccountabilityPolicySpec) and spec.signers is not None:
            strangers = open_signers(spec.signers)
            if strangers is not None:  # fail open for strangers: say so where it is read
                problems.append(("SignerTooBroad", strangers))
        if problems:
            message = "compiled and enforced, but " + "; and ".join(why for _, why in problems)
            ready = ready_condition(False, problems[0][0], message, generation, previous)
        status["conditions"] = [ready]
        if isinstance(spec, RegionPolicySpec):
            c = health.region_condition(spec.regions, self.region)
            status["conditions"].append(
                condition(c.type, c.status == "True", c.reason, c.message, generation, previous)
            )
        if kind != KIND_EXCEPTION:
            status["compiled"] = compiled_summary(kind, spec, self.cluster, self.region)
        return status

    def reconcile_once(self) -> datetime.datetime | None:
        """One full pass; returns the next ``expiresAt`` still to come (the next wake-up)."""
        now = _now()
        listed = {kind: kube.list_custom(self.api, kind) for kind in KINDS}
        live_exceptions = [
            o for o in listed[KIND_EXCEPTION] if (t := expires_at(o)) is None or t > now
        ]
        index = PolicyIndex.from_objects(
            listed[KIND_POLICY],
            listed[KIND_REGION],
            live_exceptions,
            exception_max_days=self.exception_max_days,
            last_good=self.in_force(),
            # stored by the API server, which prunes what its CRDs do not declare: a field
            # unknown here is one of newer CRDs (``PolicyIndex.from_objects``)
            leave_out_unknown_fields=True,
        )
        # An exception that cannot apply here is Invalid and left out, so that its status and
        # the webhook agree that it admits nothing.
        problems = health.exception_problems(index, cluster=self.cluster, region=self.region)
        index = health.without_exceptions(index, problems)
        # A flood of exceptions must not stop the index from reaching the webhook: past what
        # its ConfigMap carries, the newest exceptions give way, Invalid in their status.
        published, left_out = budget.within_budget(index)
        if left_out:
            log.warning(
                "%d exceptions left out of the policy index: it would not fit its ConfigMap",
                len(left_out),
            )
        statuses = health.without_exceptions(index, left_out)
        self.snapshot = Snapshot(objects=listed, index=published)
        if self.on_index is not None:
            self.on_index(published)
        if not self.is_leader():
            return None
        self.publish(published)
        for kind in KINDS:
            for obj in listed[kind]:
                self._update_status(kind, obj, statuses, now)
        upcoming = [t for o in live_exceptions if (t := expires_at(o)) is not None]
        return min(upcoming) if upcoming else None

    def in_force(self) -> PolicyIndex | None:
        """The index in force: the last one this operator built, or (on its first pass, after a
        restart or a change of leader) the one published; None if there is none to read. A
        policy an edit has broken stays in force as this index holds it
        (``PolicyIndex.from_objects``)."""
        if self.snapshot.index is not None:
            return self.snapshot.index
        try:
            existing = kube.read_configmap(self.api, self.namespace, INDEX_CONFIGMAP)
            text = (existing.data or {}).get(INDEX_KEY) if existing is not None else None
            return PolicyIndex.from_json(text) if isinstance(text, str) else None
        except AffidavitError as e:
            log.warning("the published policy index is not read as the one in force: %s", e)
            return None

    def publish(self, index: PolicyIndex) -> bool:
        """Write the index to the ConfigMap unless it already holds this digest."""
        existing = kube.read_configmap(self.api, self.namespace, INDEX_CONFIGMAP)
        if existing is not None:
            same_data = (existing.data or {}).get(INDEX_KEY) == index.to_json()
            same_digest = (existing.metadata.annotations or {}).get(DIGEST_ANNOTATION)
            if same_data and same_digest == index.digest:
                return False
        if not self.is_leader():  # lost the Lease while building or reading (a long pause):
            log.info("not publishing policy index %s: no longer the leader", index.digest)
            return False  # the new leader's index must not be written over with an older one
        kube.apply_configmap(
            self.api,
            self.namespace,
            INDEX_CONFIGMAP,
            {INDEX_KEY: index.to_json()},
            {DIGEST_ANNOTATION: index.digest},
        )
        log.info("published policy index %s", index.digest)
        return True

    def _update_status(
        self, kind: str, obj: kube.KubeObject, index: PolicyIndex, now: datetime.datetime
    ) -> None:
        desired = self.desired_status(kind, obj, index, now)
        current = obj.get("status") or {}
        if all(current.get(k) == v for k, v in desired.items()):
            return
        try:
            kube.patch_status(self.api, kind, obj, desired)
        except AffidavitError as e:
            if not kube.is_not_found(e):  # deleted meanwhile: nothing to report on
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile whenever marked dirty, at the next expiry, and every ``resync``."""

        async def step() -> float | None:
            if self._last_pass is not None:
                wait = self.min_pass_gap - (time.monotonic() - self._last_pass)
                if wait > 0:
                    await asyncio.sleep(wait)
            self._dirty.clear()  # the list below sees every change marked until now
            self._last_pass = time.monotonic()
            now = _now()
            every = min(self.resync, CRDS_CHECK_EVERY)
            due = self._crds_checked is None or now - self._crds_checked >= every
            if self.crds_check is not None and self.readiness is not None and due:
                self._crds_checked = now
                self.readiness.crds(await asyncio.to_thread(self.crds_check))
            next_expiry = await asyncio.to_thread(self.reconcile_once)
            if self.readiness is not None and self.snapshot.index is not None:
                self.readiness.succeeded(self.snapshot.index.digest)
            if next_expiry is None:
                return None
            return max(0.0, (next_expiry - _now()).total_seconds()) + 0.05

        def failed(error: Exception) -> None:
            if self.readiness is not None:
                self.readiness.failed(supervise.failure_text(error))

        await supervise.supervise(
            "reconcile",
            step,
            stop,
            interval=self.resync.total_seconds(),
            backoff=supervise.Backoff(first=1.0, factor=2.0, cap=30.0),
            wake=self._dirty,
            on_failure=failed,
        )


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    """Watch the three CRDs: every event (including the resume listing) marks the index dirty."""
    for plural in kube.PLURALS.values():

        @kopf.on.event(GROUP, VERSION, plural, registry=registry)
        async def _changed(event: Mapping[str, Any], **_: Any) -> None:
            reconciler.mark_dirty()
