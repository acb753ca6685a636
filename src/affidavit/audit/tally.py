"""Counting a period's decisions as the ledger streams them, in memory bounded by the variety.

The report over a million decisions must not hold them: each decision of the period arrives once
from :class:`affidavit.ledger.scan.ChainScan` as a few values (its columns and facts that stand
for its :class:`Kind`, found by :class:`ScanFacts` from the raw bytes of the values the scan
decoded, or taken by :func:`affidavit.audit.facts.decision_facts` from a whole parse) and is
folded into counters keyed by what the report shows
(place, day, outcome, evidence class, rule). What a decision's evidence means (covered, AI-touched,
how it was reviewed) is worked out once per distinct combination and cached. Every counter also
carries whether the decision sits in the damaged range of a broken chain, so each figure can say
how much of it the chain no longer vouches for.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.audit.facts import CachedFacts, decision_facts, freeze
from affidavit.ledger.decode import raw_value
from affidavit.ledger.scan import ScanRow

OUTCOMES = ("allowed", "warned", "audited", "excepted", "denied")
SAMPLE = 10
#: Distinct facts remembered (each a few hundred bytes) before the caches start again.
_FACTS_CACHE = 50_000

#: AI classes and how an AI-touched admitted workload was reviewed.
AI_CLASSES = ("ai", "human", "undetermined")
REVIEW_CLASSES = ("independent", "approved", "none")

#: Kubernetes' generated-name alphabet (``str.strip`` of these leaves nothing of a generated
#: suffix: one C call per name instead of a set built per name)
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def workload_of(kind: str, name: str) -> str:
    """The workload a request belongs to: a Deployment's ReplicaSets and Pods are the Deployment.

    Kubernetes names a ReplicaSet ``<deployment>-<pod-template-hash>`` and a Pod
    ``<owner>-<5 random>``, both from one alphabet; a StatefulSet's Pods are ``<name>-<ordinal>``.
    """
    if kind == "Pod":
        base, _, tail = name.rpartition("-")
        if base and ((len(tail) == 5 and not tail.strip(_ALPHABET)) or tail.isdigit()):
            name, kind = base, "ReplicaSet"
        else:
            return name
    if kind == "ReplicaSet":
        base, _, tail = name.rpartition("-")
        if base and 6 <= len(tail) <= 10 and not tail.strip(_ALPHABET):
            return base
    return name


@dataclass(frozen=True)
class Kind:
    """What a distinct combination of facts means (worked out once, shared by its decisions)."""

    region: str
    cluster: str
    in_region: bool
    provenance: bool  # every image has verified provenance evidence
    review: bool  # every image has verified review evidence
    ai: str  # AI_CLASSES
    how: str  # REVIEW_CLASSES: how the images were reviewed
    violations: tuple[tuple[Any, ...], ...]  # (rule, policy, control)
    exception: str
    authenticated: bool
    recorded: tuple[tuple[Any, ...], ...]  # the snapshot's exceptions


@dataclass
class Tally:
    """Fold :class:`ScanRow` s of the period into counters; per row only a few dict updates."""

    region: str | None = None  # a glob: eu-* is every EU region
    ai_touched: Mapping[str, bool] = field(default_factory=dict)  # digest -> verified now
    kinds: list[Kind] = field(default_factory=list)
    #: (kind index, namespace, outcome, damaged) -> decisions
    decisions: Counter[tuple[int, str, str, bool]] = field(default_factory=Counter)
    days: Counter[tuple[str, str, bool]] = field(default_factory=Counter)
    exception_uses: dict[str, dict[str, Any]] = field(default_factory=dict)
    workloads: set[tuple[str, str, str]] = field(default_factory=set)
    clean_workloads: set[tuple[str, str, str]] = field(default_factory=set)
    samples: dict[str, list[str]] = field(default_factory=lambda: {"denied": [], "excepted": []})
    _by_facts: dict[tuple[Any, ...], int] = field(default_factory=dict)
    #: id(facts) -> (facts, kind index): equal facts shared by ``CachedFacts`` are found here
    _by_id: dict[int, tuple[Any, int, Kind]] = field(default_factory=dict)
    _index: dict[Kind, int] = field(default_factory=dict)
    _places: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    _evidence: dict[tuple[Any, ...], tuple[bool, bool, bool, bool, str]] = field(
        default_factory=dict
    )
    _pairs: dict[tuple[int, tuple[bool, bool, bool, bool, str]], int] = field(default_factory=dict)

    def _kind(self, facts: tuple[Any, ...]) -> int:
        """The index of the Kind of ``facts``, worked out from two smaller caches: where and
        under which rules it was decided, and what its images' evidence says (many workloads
        share each; far fewer than share both)."""
        fields, images, viols, evs, seen, excs = facts
        place = self._places.get((fields, viols, excs))
        if place is None:
            region, cluster, exception, authenticated = fields
            region, cluster = str(region or ""), str(cluster or "")
            place = self._places[(fields, viols, excs)] = (
                region,
                cluster,
                self.region is None or fnmatch.fnmatchcase(region, self.region),
                tuple(v[:3] for v in viols),
                str(exception or ""),
                authenticated is True,
                excs,
                any(str(v[0]).startswith("review.") for v in viols),
            )
        evidence = self._evidence.get((images, evs, seen))
        if evidence is None:
            evidence = self._evidence[(images, evs, seen)] = self._classify(images, evs, seen)
        pair = (id(place), evidence)  # ``place`` is kept alive by ``_places`` (cleared together)
        index = self._pairs.get(pair)
        if index is None:
            index = self._pairs[pair] = self._kind_index(place, evidence)
        if len(self._by_facts) > _FACTS_CACHE:
            self._by_facts.clear()
            self._places.clear()
            self._evidence.clear()
            self._pairs.clear()
        self._by_facts[facts] = index
        return index

    def _kind_index(self, place: tuple[Any, ...], evidence: tuple[Any, ...]) -> int:
        prov, rev, touched, untouched, how = evidence
        ai = "ai" if touched or place[7] else "human" if untouched else "undetermined"
        region, cluster, in_region, violations, exception, authenticated, recorded, _ = place
        return self.index_of(
            Kind(
                region,
                cluster,
                in_region,
                prov,
                rev,
                ai,
                how,
                violations,
                exception,
                authenticated,
                recorded,
            )
        )

    def add(self, row: ScanRow) -> None:
        seq, id_, time, outcome, namespace, kind_, name, _, damaged, _, _, _, facts = row
        if facts is None:
            return
        hit = self._by_id.get(id(facts))
        if hit is not None and hit[0] is facts:
            k, kind = hit[1], hit[2]
        else:
            k = self._lookup(facts)
            kind = self.kinds[k]
            if len(self._by_id) > 2 * _FACTS_CACHE:
                self._by_id.clear()
            self._by_id[id(facts)] = (facts, k, kind)
        if not kind.in_region:
            return
        counts, key = self.decisions, (k, namespace, outcome, damaged)
        counts[key] = counts.get(key, 0) + 1
        days, key2 = self.days, (time[:10], outcome, damaged)
        days[key2] = days.get(key2, 0) + 1
        wl = (
            kind.cluster,
            namespace,
            workload_of(kind_, name) if kind_ == "Pod" or kind_ == "ReplicaSet" else name,
        )
        self.workloads.add(wl)
        if outcome == "allowed":
            self.clean_workloads.add(wl)
            return
        samples = self.samples.get(outcome)
        if samples is not None and len(samples) < SAMPLE:
            samples.append(f"{id_} (seq {seq})")
        if outcome == "excepted":
            self._excepted(row, kind)

    def index_of(self, kind: Kind) -> int:
        """The index of ``kind`` in ``kinds`` (added when new)."""
        index = self._index.get(kind)
        if index is None:
            index = self._index[kind] = len(self.kinds)
            self.kinds.append(kind)
        return index

    def portable(self) -> Tally:
        """This tally without its caches (keyed by object identity, meaningless elsewhere)."""
        for cache in (self._by_facts, self._by_id, self._index, self._places, self._evidence):
            cache.clear()
        self._pairs.clear()
        return self

    def _lookup(self, facts: tuple[Any, ...]) -> int:
        try:
            k = self._by_facts.get(facts)
        except TypeError:  # a list or object among the values: count its frozen form
            facts = freeze(facts)
            k = self._by_facts.get(facts)
        return self._kind(facts) if k is None else k

    def rows(self) -> list[tuple[Kind, str, str, bool, int]]:
        """(kind, namespace, outcome, damaged, decisions) for every counted combination."""
        return [(self.kinds[k], ns, o, bad, n) for (k, ns, o, bad), n in self.decisions.items()]

    def rule_counts(self) -> Counter[tuple[str, str, str | None, str, bool]]:
        """(rule, policy, control, outcome of the decision, damaged) -> violations."""
        out: Counter[tuple[str, str, str | None, str, bool]] = Counter()
        for kind, _ns, outcome, bad, n in self.rows():
            for rule, policy, control in kind.violations:
                out[(str(rule), str(policy), control, outcome, bad)] += n
        return out

    def _excepted(self, row: ScanRow, kind: Kind) -> None:
        time, damaged = row[2], row[8]
        recorded = {f"{e[0]}/{e[1]}": e for e in kind.recorded}
        for exc in filter(None, kind.exception.split(", ")):
            use = self.exception_uses.setdefault(
                exc,
                {"uses": 0, "workloads": set(), "first": time, "last": time, "controls": set()},
            )
            use["uses"] += 1
            use["workloads"].add(f"{kind.cluster}/{row[4]}/{row[5]}/{row[6]}")
            use["first"], use["last"] = min(use["first"], time), max(use["last"], time)
            use["damaged"] = use.get("damaged", False) or damaged
            use["controls"] |= {v[2] for v in kind.violations if v[2]}
            if exc in recorded:
                use["recorded"] = recorded[exc]

    def _classify(
        self,
        images: tuple[tuple[Any, ...], ...],
        evs: tuple[tuple[Any, ...], ...],
        seen: tuple[tuple[Any, ...], ...],
    ) -> tuple[bool, bool, bool, bool, str]:
        """(all images with provenance, with review, some image known AI-touched, every image
        known not AI-touched, how the images were reviewed)."""
        refs = [i[0] for i in images]
        prov = bool(refs) and all((r, AI_PROVENANCE_V1) in evs for r in refs)
        rev = bool(refs) and all((r, CODE_REVIEW_V1) in evs for r in refs)
        by_ref = {s[0]: s for s in seen}
        known: list[bool | None] = []
        for ref, digest in images:
            s = by_ref.get(ref)
            if s is not None and s[1] is not None:  # verified provenance at decision time
                known.append(bool((s[2] or 0) + (s[3] or 0)))
            else:
                known.append(self.ai_touched.get(digest) if digest else None)
        how = "none"
        reviews = [by_ref[r] for r in refs if r in by_ref and by_ref[r][4] is not None]
        if reviews and len(reviews) == len(refs):
            independent = all(isinstance(s[5], int) and s[5] > 0 for s in reviews)
            how = "independent" if independent else "approved"
        elif rev:
            how = "approved"
        return prov, rev, any(known), bool(refs) and all(k is False for k in known), how


class ScanFacts:
    """What the chain scan hands a :class:`Tally` for each decision of the period: facts that
    stand for the decision's :class:`Kind`.

    Most decisions are decoded by the scan with their values kept as raw JSON bytes
    (:mod:`affidavit.ledger.decode`). Two halves of them are looked up by those bytes: where the
    decision was made and under which rules (``PLACE``), and what its images' evidence was
    (``EVIDENCE``), whose meaning is its evidence class (``Tally._classify``, few values however
    many images there are). Each half is decoded and worked out once per distinct bytes; the
    pair of a place and an evidence class is one Kind, represented by the facts of the first
    decision of that pair (the tally reads only the Kind of facts), shared by identity. A
    decision the scan parsed whole (``__call__``) gets its facts as before.
    """

    #: The snapshot holds both where (the caller, the exceptions) and what (the images).
    PLACE = ("region", "cluster", "exception", "violations", "snapshot")
    EVIDENCE = ("images", "evidence", "snapshot")
    keys = tuple(dict.fromkeys(PLACE + EVIDENCE))  # the values the scan keeps raw

    def __init__(self, tally: Tally, limit: int = 20_000) -> None:
        self.tally, self.limit = tally, limit
        self.cached = CachedFacts()
        self._places: dict[bytes, tuple[Any, ...]] = {}
        self._evidence: dict[bytes, tuple[Any, ...]] = {}
        #: (id(place), evidence class) -> the facts standing for that Kind
        self._pairs: dict[tuple[int, tuple[Any, ...]], tuple[Any, ...]] = {}

    def __call__(self, data: dict[str, Any]) -> tuple[Any, ...]:
        return self.cached(data)

    def raw(self, values: Any) -> tuple[Any, ...]:
        """The facts for a decision decoded with its ``keys`` values raw (attributes)."""
        # no raw NUL byte is valid JSON: each join is unambiguous
        where = b"\0".join(
            (values.region, values.cluster, values.exception, values.violations, values.snapshot)
        )
        what = b"\0".join((values.images, values.evidence, values.snapshot))
        place = self._places.get(where)
        if place is None or (evidence := self._evidence.get(what)) is None:
            place, evidence = self._halves(values, where, what)
        pair = (id(place), evidence[0])  # ``place`` is kept alive by ``_places``
        facts = self._pairs.get(pair)
        if facts is None:
            fields, viols, excs = place
            _, images, evs, seen = evidence
            facts = self._pairs[pair] = (fields, images, viols, evs, seen, excs)
        return facts

    def _halves(
        self, values: Any, where: bytes, what: bytes
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        if len(self._places) >= self.limit or len(self._evidence) >= self.limit:
            self._places.clear()
            self._evidence.clear()
            self._pairs.clear()
        place = self._places.get(where)
        if place is None:
            data = {k: raw_value(getattr(values, k)) for k in self.PLACE}
            fields, _, viols, _, _, excs = freeze(decision_facts(data))
            place = self._places[where] = (fields, viols, excs)
        evidence = self._evidence.get(what)
        if evidence is None:
            data = {k: raw_value(getattr(values, k)) for k in self.EVIDENCE}
            _, images, _, evs, seen, _ = freeze(decision_facts(data))
            kind = self.tally._classify(images, evs, seen)
            evidence = self._evidence[what] = (kind, images, evs, seen)
        return place, evidence
