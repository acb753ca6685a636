"""When an attestation says it was made: the order among attestations of one predicate type.

An image can carry several attestations of one type (a review re-collected after a reviewer
withdrew an approval, provenance re-collected after a tier map fix). The one that counts is the
newest, and "newest" must come from inside the signed statement: the order in which a registry
lists layers or referrers is chosen by whoever can write to the registry, not by the signer.

The time is the predicate's ``createdAt`` (set by the collector, RFC 3339). Predicates made
before ``createdAt`` existed fall back to the newest signed time their content carries: a
review's ``submittedAt`` and ``changeRequest.mergedAt``, a provenance's ``committedAt``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from affidavit.attestations.predicates.provenance import AI_PROVENANCE_V1
from affidavit.attestations.predicates.review import CODE_REVIEW_V1


def utc_now_rfc3339() -> str:
    """The current time as a predicate's ``createdAt`` (second precision, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # signed, so only the signer chose it: a zone that moves it past year 1 or 9999 in UTC
        # (OverflowError) makes it no time, as an unreadable one is
        return parsed.astimezone(UTC) if parsed.tzinfo else None
    except (ValueError, OverflowError):
        return None


def _items(value: object) -> Iterable[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _content_times(predicate_type: str, predicate: Mapping[str, Any]) -> list[object]:
    if predicate_type == CODE_REVIEW_V1:
        cr = predicate.get("changeRequest")
        merged = cr.get("mergedAt") if isinstance(cr, Mapping) else None
        return [merged, *(r.get("submittedAt") for r in _items(predicate.get("reviews")))]
    if predicate_type == AI_PROVENANCE_V1:
        return [c.get("committedAt") for c in _items(predicate.get("changes"))]
    return []


def signed_time(predicate_type: str, predicate: Mapping[str, Any]) -> datetime | None:
    """``createdAt``, else the newest time the content carries; None when it carries none."""
    created = _parse(predicate.get("createdAt"))
    if created is not None:
        return created
    times = [t for t in map(_parse, _content_times(predicate_type, predicate)) if t is not None]
    return max(times) if times else None
