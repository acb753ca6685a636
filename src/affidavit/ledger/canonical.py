"""Canonical JSON of a decision and the hash chain that links decisions together.

The hash of a row is ``sha256(prev_hash + canonical_json)``; it is only tamper-evident if every
writer and every verifier produce byte-identical JSON for the same decision. This module is the
one place that defines those bytes. The ledger sits beside the policy package (neither imports
the other), so it accepts any dataclass shaped like a Decision instead of importing the type.

Every admission writes one decision, so the webhook's path (``canonical_pair``) converts it in one
pass without ``dataclasses.asdict``'s deep copies and writes the JSON with orjson, which gives the
same bytes as ``json.dumps`` except for some floats (``1e-05`` is ``0.00001`` there): any float
whose shortest form differs, and anything orjson refuses (lone surrogates, integers past 64
bits), takes ``json.dumps`` instead.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

#: ``prev_hash`` of the first row.
GENESIS_HASH = "0" * 64


class DecisionLike(Protocol):
    """What the ledger needs of a decision (``affidavit.policy.decision.Decision`` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def time(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...


def decision_to_dict(decision: DecisionLike | Mapping[str, Any]) -> dict[str, Any]:
    """The decision as plain JSON-able data (dataclasses recursively, tuples as lists)."""
    if isinstance(decision, Mapping):
        return dict(decision)
    return _plain(decision)[0]


def _plain(decision: DecisionLike | Mapping[str, Any]) -> tuple[dict[str, Any], _Plain]:
    """The decision converted by one :class:`_Plain` pass, and that pass (its ``exact``)."""
    plain = _Plain()
    if isinstance(decision, Mapping):
        return {k: plain.value(v) for k, v in decision.items()}, plain
    if not dataclasses.is_dataclass(decision) or isinstance(decision, type):
        raise TypeError(f"ledger entries must be dataclass instances, got {type(decision)!r}")
    return plain.dict(decision), plain


class _Plain:
    """``dataclasses.asdict`` for decision-shaped values (dataclasses, dicts, lists, tuples and
    JSON scalars; anything else is deep-copied as ``asdict`` does), noting on the way whether
    every float is one whose orjson text is ``json``'s."""

    _fields: dict[type, tuple[str, ...]] = {}  # noqa: RUF012 - a cache shared by all instances

    def __init__(self) -> None:
        self.exact = True

    def dict(self, obj: object) -> dict[str, Any]:
        cls = type(obj)
        names = self._fields.get(cls)
        if names is None:
            names = self._fields[cls] = tuple(f.name for f in dataclasses.fields(obj))  # type: ignore[arg-type]
        return {name: self.value(getattr(obj, name)) for name in names}

    def value(self, obj: Any) -> Any:
        cls = type(obj)
        if cls is str or cls is int or cls is bool or obj is None:
            return obj
        if cls is float:
            if self.exact and orjson.dumps(obj) != repr(obj).encode():
                self.exact = False
            return obj
        if cls is tuple or cls is list:
            return cls(self.value(v) for v in obj)
        if cls is dict:
            return {self.value(k): self.value(v) for k, v in obj.items()}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return self.dict(obj)
        self.exact = False
        return copy.deepcopy(obj)


def canonical_pair(decision: DecisionLike | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """``decision_to_dict(decision)`` and its ``canonical_json``, by one pass and orjson."""
    data, plain = _plain(decision)
    if plain.exact:
        try:
            return data, orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
        except (orjson.JSONEncodeError, TypeError):
            pass  # a lone surrogate, an integer past 64 bits, a key that is no string
    return data, canonical_json(data)


def canonical_json(data: Mapping[str, Any]) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 kept as is: one text per value."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, canonical: str) -> str:
    """``sha256(prev_hash + canonical_json)`` as lowercase hex."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()
