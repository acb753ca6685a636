"""Canonical JSON of a decision and the hash chain that links decisions together.

The hash of a row is ``sha256(prev_hash + canonical_json)``; it is only tamper-evident if every
writer and every verifier produce byte-identical JSON for the same decision. This module is the
one place that defines those bytes. The ledger sits beside the policy package (neither imports
the other), so it accepts any dataclass shaped like a Decision instead of importing the type.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

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
    if not dataclasses.is_dataclass(decision) or isinstance(decision, type):
        raise TypeError(f"ledger entries must be dataclass instances, got {type(decision)!r}")
    return dataclasses.asdict(decision)


def canonical_json(data: Mapping[str, Any]) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 kept as is: one text per value."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, canonical: str) -> str:
    """``sha256(prev_hash + canonical_json)`` as lowercase hex."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()
