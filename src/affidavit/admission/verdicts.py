"""The verdict of a warm review, remembered for the next review that asks the same question.

Why: evaluating the policy is the largest part of judging a warm review (about 40% of its CPU),
and a busy cluster asks the same question over and over (every replica set, rollout and re-apply
of one workload: same namespace, same images at the same digests, same labels, same policies).
So the Decision that ``policy.evaluate`` returns is kept, and a later request whose every input
is the same gets a copy with its own id and time.

The key holds every input of ``evaluate`` but the request's uid (which no Decision records) and
the clock: the policy index and the evidence by identity (a new index, a re-verified or
re-fetched attestation is a new object, so it is a new key: an index change or an evidence TTL
that ran out can never be answered from here), everything else by value. The clock is left out
only where no rule reads it, so a verdict is remembered only when:
- no AccountabilityException in the index is active for the workload and any of its images
  (an active one expires by the clock; one that is not active now never becomes active: expired
  stays expired, and everything else ``exceptions_for`` matches on is in the key);
- no effective policy sets ``provenance.maxAgeDays`` (provenance ages by the clock).
Anything else is evaluated every time, as before. Only the current index's verdicts are kept (a
new index clears them), at most ``MAX_VERDICTS``; each keeps its evidence alive until dropped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from affidavit.attestations.evidence import ImageEvidence
from affidavit.policy.decision import Decision
from affidavit.policy.evaluate import RequestContext, evaluate, exceptions_reaching
from affidavit.policy.index import PolicyIndex

#: Remembered verdicts at most (least recently used dropped first).
MAX_VERDICTS = 1024


@dataclass(frozen=True)
class _Entry:
    index: PolicyIndex  # kept: the key holds its id
    evidence: tuple[ImageEvidence | None, ...]  # kept: the key holds their parts' ids
    decision: Decision


class Verdicts:
    """``policy.evaluate``, remembering the verdicts no clock can change."""

    def __init__(self, max_entries: int = MAX_VERDICTS) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._index: PolicyIndex | None = None  # the index of every entry
        self._lock = threading.Lock()
        #: Verdicts answered from memory, and evaluated (for tests and benchmarks).
        self.hits = 0
        self.misses = 0

    def evaluate(
        self,
        ctx: RequestContext,
        evidence: Mapping[str, ImageEvidence | None],
        index: PolicyIndex,
        *,
        now: datetime,
        decision_id: str,
        missing: Mapping[str, tuple[str, str, str]],
    ) -> Decision:
        """What ``policy.evaluate`` answers (``ctx`` in canonical form, as the webhook has it)."""
        key = self._key(ctx, evidence, index, missing, now)
        if key is not None:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.index is index:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    stamp = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
                    return replace(entry.decision, id=decision_id, time=stamp)
        decision = evaluate(ctx, evidence, index, now=now, decision_id=decision_id, missing=missing)
        with self._lock:
            self.misses += 1
            if key is not None and index is not self._index:
                self._entries.clear()  # no verdict of an older index is asked for again
                self._index = index
            if key is not None:
                kept = tuple(evidence.get(image) for image in ctx.images)
                self._entries[key] = _Entry(index, kept, decision)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return decision

    @staticmethod
    def _key(
        ctx: RequestContext,
        evidence: Mapping[str, ImageEvidence | None],
        index: PolicyIndex,
        missing: Mapping[str, tuple[str, str, str]],
        now: datetime,
    ) -> Hashable | None:
        """Every input but the uid and the clock, or None when the clock matters."""
        found: list[Hashable] = []
        for image in ctx.images:
            eff = ctx.effective(index, image)
            if eff is not None and eff.provenance_max_age_days is not None:
                return None
            if exceptions_reaching(index, ctx, image, now):
                return None
            ev = evidence.get(image)
            if ev is None:
                found.append((image, None))
            else:  # re-verified evidence is a new tuple (an image renamed by the cache: not)
                found.append((image, ev.digest, id(ev.verified), id(ev.rejected), id(ev.assumed)))
        return (
            id(index),
            ctx.cluster,
            ctx.region,
            ctx.namespace,
            tuple(sorted(ctx.namespace_labels.items())),
            ctx.kind,
            ctx.name,
            ctx.lineage,
            tuple(sorted(ctx.expect_pinned)),
            ctx.acts_as,
            ctx.groups,
            ctx.operation,
            ctx.user,
            tuple(sorted(ctx.labels.items())),
            ctx.images,
            ctx.unmatched_images,
            ctx.caller,
            tuple(found),
            tuple(sorted(missing.items())),
        )
