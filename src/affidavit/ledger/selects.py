"""The SQL behind the ledger's reading methods: which decisions a filter or a check selects.

Why apart from :mod:`affidavit.ledger.store`: the store opens, writes and guards the database;
what a query means (a period with an inclusive start and an exclusive end, an image matched as
written, by digest or by repository, what counts as admitted) is a question of its own, asked by
the decisions API, ``affidavit explain`` and the webhook's check of pinned children alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select

from affidavit.ledger.schema import decision_images, decisions

__all__ = ["ADMITTING", "admitting", "matching"]

#: The outcomes that let a workload in (every one but ``denied``), named so a new one is not.
ADMITTING = ("allowed", "warned", "audited", "excepted")


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def matching(
    *,
    since: datetime | None,
    until: datetime | None,
    namespace: str | None,
    outcome: str | None,
    image: str | None,
    limit: int | None,
    kind: str | None,
    names: Sequence[str],
    newest_first: bool,
) -> Any:
    """The decisions matching every given filter (see ``Ledger.query``), in chain order."""
    q = select(decisions)
    if since is not None:
        q = q.where(decisions.c.time >= _naive_utc(since))
    if until is not None:
        q = q.where(decisions.c.time < _naive_utc(until))
    if namespace is not None:
        q = q.where(decisions.c.namespace == namespace)
    if outcome is not None:
        q = q.where(decisions.c.outcome == outcome)
    if kind is not None:
        q = q.where(decisions.c.kind == kind)
    if names:
        q = q.where(decisions.c.name.in_(tuple(names)))
    if image is not None:
        pattern = image.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        holding = select(decision_images.c.seq).where(
            or_(
                decision_images.c.ref == image,
                decision_images.c.digest == image,
                decision_images.c.ref.like(pattern + ":%", escape="\\"),
                decision_images.c.ref.like(pattern + "@%", escape="\\"),
            )
        )
        q = q.where(decisions.c.seq.in_(holding))
    q = q.order_by(decisions.c.seq.desc() if newest_first else decisions.c.seq)
    if limit is not None:
        q = q.limit(limit)
    return q


def admitting(
    namespace: str, ref: str, digest: str, workloads: Sequence[tuple[str, str]] = ()
) -> Any:
    """The first decision in ``namespace`` that admitted ``ref`` at ``digest`` (see
    ``Ledger.admitted``); one that admitted it despite violations (warned, audited, excepted)
    only when it is about one of ``workloads`` (``(kind, name)`` pairs)."""
    judged = select(decision_images.c.seq).where(
        decision_images.c.ref.in_((ref, f"{ref}@{digest}")),
        decision_images.c.digest == digest,
    )
    on_evidence = decisions.c.outcome == "allowed"
    lenient = [o for o in ADMITTING if o != "allowed"]
    excepted = [
        and_(decisions.c.outcome.in_(lenient), decisions.c.kind == k, decisions.c.name == n)
        for k, n in workloads
    ]
    query = (
        select(decisions.c.seq)
        .where(
            decisions.c.seq.in_(judged),
            decisions.c.namespace == namespace,
            or_(on_evidence, *excepted),
        )
        .limit(1)
    )
    return query
