"""The facts the report counts of one decision, taken from the parse the chain scan checked.

Every decision of the period is reduced to a few tuples (where it was decided and under which
rules, its images and their evidence); :class:`CachedFacts` works them out once per distinct
combination, so the per-decision cost is two short serialisations and three dictionary lookups,
and equal facts are one shared object the tally can recognise by identity.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from orjson import dumps

__all__ = ["FIELDS", "CachedFacts", "decision_facts", "freeze"]

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
RECORDED_KEYS = (
    "namespace",
    "name",
    "owner",
    "incident_id",
    "approvers",
    "expires_at",
    "reason",
    "requested_by",  # snapshot version 2; None before
)


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


def _label(value: Any) -> Any:
    """A violation's rule, policy or control as the report shows and sorts it: text as it
    is, absent as None, anything else (a number, a list: not what Affidavit writes, but a
    hashed decision may hold it) as its JSON text, so one odd row cannot break the sorting."""
    if value is None or type(value) is str:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _violations(items: Any) -> tuple[Any, ...]:
    return tuple([tuple([_label(v) for v in row]) for row in _elements(items, VIOLATION_KEYS)])


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
        _violations(get("violations")),
        _elements(get("evidence"), EVIDENCE_KEYS),
        _seen(snapshot.get("images")),
        _elements(snapshot.get("exceptions"), RECORDED_KEYS, frozen=True),
    )


class CachedFacts:
    """:func:`decision_facts`, worked out once per distinct combination and then shared.

    Most decisions repeat another's facts. They come in two halves that vary independently:
    where and under which rules a decision was made (region, cluster, exception, caller,
    violations, the snapshot's exceptions: a few thousand combinations in a year) and what its
    images' evidence was (images, evidence, the snapshot's images). Each half is cached by the
    exact JSON (orjson, one C call) of the values it is made from, so two decisions share a half
    only when those values are equal; the whole is then the pair of halves, found by identity.
    The shared tuple lets ``Tally`` find its counters by identity instead of hashing the facts.
    """

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._places: dict[bytes, tuple[Any, ...]] = {}
        self._evidence: dict[bytes, tuple[Any, ...]] = {}
        #: (id(place half), id(evidence half)) -> facts; valid while both halves are cached
        self._both: dict[tuple[int, int], tuple[Any, ...]] = {}

    def __call__(self, data: dict[str, Any]) -> tuple[Any, ...]:
        get = data.get
        snapshot = get("snapshot")
        if type(snapshot) is dict:
            caller = snapshot.get("caller")
            authenticated = caller.get("authenticated") if type(caller) is dict else None
            seen, recorded = snapshot.get("images"), snapshot.get("exceptions")
        else:
            authenticated = seen = recorded = None
        region, cluster, exception, viols = (
            get("region"),
            get("cluster"),
            get("exception"),
            get("violations"),
        )
        images, evidence = get("images"), get("evidence")
        try:
            where = dumps((region, cluster, exception, authenticated, viols, recorded))
            what = dumps((images, evidence, seen))
        except orjson.JSONEncodeError:
            return decision_facts(data)
        place = self._places.get(where)
        if place is None:
            if len(self._places) >= self.limit:
                self._clear()
            place = self._places[where] = (
                (region, cluster, exception, authenticated),
                _violations(viols),
                _elements(recorded, RECORDED_KEYS, frozen=True),
            )
        ev = self._evidence.get(what)
        if ev is None:
            if len(self._evidence) >= self.limit:
                self._clear()
                self._places[where] = place
            ev = self._evidence[what] = (
                _elements(images, IMAGE_KEYS),
                _elements(evidence, EVIDENCE_KEYS),
                _seen(seen),
            )
        pair = (id(place), id(ev))
        facts = self._both.get(pair)
        if facts is None:
            if len(self._both) >= 4 * self.limit:
                self._clear()
                self._places[where], self._evidence[what] = place, ev
            facts = self._both[pair] = (place[0], ev[0], place[1], ev[1], ev[2], place[2])
        return facts

    def _clear(self) -> None:
        self._places.clear()
        self._evidence.clear()
        self._both.clear()


def freeze(value: Any) -> Any:
    """Lists and tuples as tuples, objects as (key, value) tuples: hashable, to be counted.

    A value that hashes already holds no list or object (a parsed JSON value holds nothing
    else unhashable) and is returned as it is: one C call instead of a walk of every member."""
    try:
        hash(value)
    except TypeError:
        pass
    else:
        return value
    if type(value) is list or type(value) is tuple:
        return tuple(freeze(v) for v in value)
    if type(value) is dict:
        return tuple((k, freeze(v)) for k, v in value.items())
    return value
