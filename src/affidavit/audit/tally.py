"""Counting a period's decisions as the ledger streams them, in memory bounded by the variety.

The report over a million decisions must not hold them: each decision of the period arrives once
from :class:`affidavit.ledger.scan.ChainScan` as a few values (its columns and the facts below,
taken by :func:`decision_facts` from the one parse the scan checked the row against) and is
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

import orjson

from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.ledger.scan import ScanRow

OUTCOMES = ("allowed", "warned", "audited", "excepted", "denied")
SAMPLE = 10
#: Distinct facts remembered (each a few hundred bytes) before the caches start again.
_FACTS_CACHE = 20_000

#: Taken from each decision's JSON (parsed once by the scan); their order is the one
#: ``decision_facts`` gives and ``Tally._kind`` reads.
FIELDS = ("region", "cluster", "exception", "snapshot.caller.authenticated")
IMAGE_KEYS = ("ref", "digest")
VIOLATION_KEYS = ("rule", "policy", "control")
EVIDENCE_KEYS = ("image", "predicate_type")
SEEN_KEYS = (
    "image",
    "provenance",
    "assisted",
    "generated",
    "review.approvals",
    "review.independent_approvals",
)
RECORDED_KEYS = ("namespace", "name", "owner", "incident_id", "approvers", "expires_at", "reason")


def _elements(items: Any, keys: tuple[str, ...], frozen: bool = False) -> tuple[Any, ...]:
    """(keys' values) of each object of a JSON array whose first key is set (others dropped);
    ``frozen``: values that are lists (an exception's approvers) as tuples."""
    if type(items) is not list:
        return ()
    first = keys[0]
    return tuple(
        [
            tuple([freeze(i.get(k)) if frozen else i.get(k) for k in keys])
            for i in items
            if type(i) is dict and i.get(first) is not None
        ]
    )


def _seen(items: Any) -> tuple[tuple[Any, ...], ...]:
    out = []
    for i in items if type(items) is list else ():
        if type(i) is dict and i.get("image") is not None:
            review = i.get("review")
            review = review if type(review) is dict else {}
            out.append(
                (
                    i["image"],
                    i.get("provenance"),
                    i.get("assisted"),
                    i.get("generated"),
                    review.get("approvals"),
                    review.get("independent_approvals"),
                )
            )
    return tuple(out)


def decision_facts(data: dict[str, Any]) -> tuple[Any, ...]:
    """What the report counts of one decision: ``(FIELDS values)``, then its images
    (``IMAGE_KEYS``), violations, evidence, the snapshot's images (``SEEN_KEYS``) and the
    snapshot's exceptions (``RECORDED_KEYS``), each a tuple of tuples. Called once per decision
    of the period, so it is written out rather than walked from the key lists; values are JSON
    values as parsed (``Tally`` freezes a list or object before counting it)."""
    get = data.get
    snapshot = get("snapshot")
    snapshot = snapshot if type(snapshot) is dict else {}
    caller = snapshot.get("caller")
    return (
        (
            get("region"),
            get("cluster"),
            get("exception"),
            caller.get("authenticated") if type(caller) is dict else None,
        ),
        _elements(get("images"), IMAGE_KEYS),
        _elements(get("violations"), VIOLATION_KEYS),
        _elements(get("evidence"), EVIDENCE_KEYS),
        _seen(snapshot.get("images")),
        _elements(snapshot.get("exceptions"), RECORDED_KEYS, frozen=True),
    )


class CachedFacts:
    """:func:`decision_facts`, worked out once per distinct combination and then shared.

    Most decisions repeat another's facts (the same image, evidence, rules, place). The cache
    key is the exact JSON (orjson, one C call) of every value ``decision_facts`` reads, so two
    decisions share an answer only when those values are equal; the shared tuple lets ``Tally``
    find its counters by identity instead of hashing the facts again.
    """

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._cache: dict[bytes, tuple[Any, ...]] = {}

    def __call__(self, data: dict[str, Any]) -> tuple[Any, ...]:
        get = data.get
        snapshot = get("snapshot")
        if type(snapshot) is dict:
            caller = snapshot.get("caller")
            snap: Any = (
                caller.get("authenticated") if type(caller) is dict else None,
                snapshot.get("images"),
                snapshot.get("exceptions"),
            )
        else:
            snap = None
        parts = (
            get("region"),
            get("cluster"),
            get("exception"),
            get("images"),
            get("violations"),
            get("evidence"),
            snap,
        )
        try:
            key = orjson.dumps(parts)
        except orjson.JSONEncodeError:
            return decision_facts(data)
        facts = self._cache.get(key)
        if facts is None:
            if len(self._cache) >= self.limit:
                self._cache.clear()
            facts = self._cache[key] = decision_facts(data)
        return facts


def freeze(value: Any) -> Any:
    """Lists and tuples as tuples, objects as (key, value) tuples: hashable, to be counted."""
    if type(value) is list or type(value) is tuple:
        return tuple(freeze(v) for v in value)
    if type(value) is dict:
        return tuple((k, freeze(v)) for k, v in value.items())
    return value


#: AI classes and how an AI-touched admitted workload was reviewed.
AI_CLASSES = ("ai", "human", "undetermined")
REVIEW_CLASSES = ("independent", "approved", "none")

_ALPHABET = set("bcdfghjklmnpqrstvwxz2456789")


def _generated(suffix: str, lengths: tuple[int, ...]) -> bool:
    return len(suffix) in lengths and set(suffix) <= _ALPHABET


def workload_of(kind: str, name: str) -> str:
    """The workload a request belongs to: a Deployment's ReplicaSets and Pods are the Deployment.

    Kubernetes names a ReplicaSet ``<deployment>-<pod-template-hash>`` and a Pod
    ``<owner>-<5 random>``, both from one alphabet; a StatefulSet's Pods are ``<name>-<ordinal>``.
    """
    if kind == "Pod":
        base, _, tail = name.rpartition("-")
        if base and (_generated(tail, (5,)) or tail.isdigit()):
            name, kind = base, "ReplicaSet"
        else:
            return name
    if kind == "ReplicaSet":
        base, _, tail = name.rpartition("-")
        if base and _generated(tail, tuple(range(6, 11))):
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
    _by_id: dict[int, tuple[Any, int]] = field(default_factory=dict)
    _index: dict[Kind, int] = field(default_factory=dict)
    _places: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    _evidence: dict[tuple[Any, ...], tuple[bool, bool, bool, bool, str]] = field(
        default_factory=dict
    )

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
        prov, rev, touched, untouched, how = evidence
        ai = "ai" if touched or place[7] else "human" if untouched else "undetermined"
        region, cluster, in_region, violations, exception, authenticated, recorded, _ = place
        kind = Kind(
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
        index = self._index.get(kind)
        if index is None:
            index = self._index[kind] = len(self.kinds)
            self.kinds.append(kind)
        if len(self._by_facts) > _FACTS_CACHE:
            self._by_facts.clear()
            self._places.clear()
            self._evidence.clear()
        self._by_facts[facts] = index
        return index

    def add(self, row: ScanRow) -> None:
        facts = row[12]
        if facts is None:
            return
        hit = self._by_id.get(id(facts))
        if hit is not None and hit[0] is facts:
            k = hit[1]
        else:
            k = self._lookup(facts)
            if len(self._by_id) > _FACTS_CACHE:
                self._by_id.clear()
            self._by_id[id(facts)] = (facts, k)
        kind = self.kinds[k]
        if not kind.in_region:
            return
        outcome, namespace, damaged = row[3], row[4], row[8]
        self.decisions[(k, namespace, outcome, damaged)] += 1
        self.days[(row[2][:10], outcome, damaged)] += 1
        wl = (kind.cluster, namespace, workload_of(row[5], row[6]))
        self.workloads.add(wl)
        if outcome == "allowed":
            self.clean_workloads.add(wl)
            return
        if outcome in self.samples and len(self.samples[outcome]) < SAMPLE:
            self.samples[outcome].append(f"{row[1]} (seq {row[0]})")
        if outcome == "excepted":
            self._excepted(row, kind)

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
