"""How long an AccountabilityException may last: the cluster's maximum and each policy's.

Break-glass must end by itself. Every exception is bounded by the cluster's maximum (default
7 days, the webhook's and operator's ``--exception-max-days``, chart value ``exceptions.maxDays``)
even when no policy or preset says anything, and by the ``exceptions.maxDays`` of every policy
and preset that governs its images. The lifetime runs from the object's ``creationTimestamp``
(set by the API server, so the author cannot backdate it) to its ``expiresAt``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_EXCEPTION_MAX_DAYS = 7
CLUSTER_SOURCE = "cluster setting exceptionMaxDays"


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time with a zone (``...Z``), or None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t.utcoffset() == timedelta(0) else t.isoformat()


def duration(d: timedelta) -> str:
    """``7 days``, ``7 days 3 hours``, ``5 hours``: what a person reads in a status."""
    days, rest = divmod(int(d.total_seconds()), 86400)
    hours = rest // 3600
    parts = [f"{days} day{'s' * (days != 1)}"] if days else []
    if hours or not days:
        parts.append(f"{hours} hour{'s' * (hours != 1)}")
    return " ".join(parts)


def too_long(created: datetime | None, expires: datetime, max_days: int, source: str) -> str | None:
    """Why an exception outlives ``max_days`` (from ``source``), or None when it does not.

    Without a creationTimestamp (a local policy file) nothing can be said here; the webhook then
    measures from the time of the request.
    """
    if created is None or expires - created <= timedelta(days=max_days):
        return None
    latest = created + timedelta(days=max_days)
    return (
        f"spec.expiresAt: the exception lasts {duration(expires - created)} (creationTimestamp "
        f"{rfc3339(created)} to expiresAt {rfc3339(expires)}); {source} allows at most "
        f"{max_days} days; set expiresAt no later than {rfc3339(latest)}"
    )
