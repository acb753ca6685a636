"""Keep the published policy index within what a ConfigMap can carry.

The operator publishes the index as one ConfigMap, which holds at most 1 MiB. Anyone who may
create AccountabilityExceptions in some namespace could otherwise push it past that (many
exceptions, or long ones): every publish then failed, and the webhook kept judging by the last
index it had, so no later policy, tightening or revocation reached it. Policies and region
policies only tighten, so they always go in; exceptions only relax, so when the index would not
fit, the newest exceptions give way (fail closed) and their status says why. Errors about
exceptions (their status already carries each) are summed up in one line when even they do not
fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from affidavit.policy.index import PolicyIndex
from affidavit.policy.lifetime import parse_time
from affidavit.policy.model import KIND_EXCEPTION, AccountabilityExceptionSpec
from affidavit.policy.stored import Stored

#: The most the index's JSON may take in its ConfigMap (1 MiB in all, names and annotations too).
INDEX_BUDGET_BYTES = 900 * 1024

_LATEST = datetime.max.replace(tzinfo=UTC)


def size(index: PolicyIndex) -> int:
    """The bytes the index takes in its ConfigMap."""
    return len(index.to_json().encode())


def within_budget(
    index: PolicyIndex, budget: int = INDEX_BUDGET_BYTES
) -> tuple[PolicyIndex, dict[str, str]]:
    """``index`` as it can be published, and why each exception left out of it was.

    The oldest exceptions are kept, as many as fit (an exception made during a flood is the one
    to give way, not one that was already in force). An index whose policies alone do not fit
    is returned as it is: publishing it fails and the operator says so."""
    whole = size(index)
    if whole <= budget:
        return index, {}
    exception_errors = {k: v for k, v in index.errors.items() if k.startswith(f"{KIND_EXCEPTION}/")}
    errors = index.errors
    if size(_with(index, [], errors)) > budget and exception_errors:
        errors = {k: v for k, v in errors.items() if k not in exception_errors}
        errors[f"{KIND_EXCEPTION}/*"] = (
            f"{len(exception_errors)} invalid exceptions are not listed in the published index "
            "(it would not fit its ConfigMap); each one's status says why"
        )
    oldest = sorted(index.exceptions, key=_age)
    low, high = 0, len(oldest)  # the most exceptions that fit: low fits (or is 0), high + 1 not
    while low < high:
        mid = (low + high + 1) // 2
        if size(_with(index, oldest[:mid], errors)) <= budget:
            low = mid
        else:
            high = mid - 1
    left_out = oldest[low:]
    why = (
        f"left out of the published policy index: with every exception it would take "
        f"{whole:,} bytes, past the {budget:,} its ConfigMap can carry, and then no policy "
        "change would reach the webhook; the newest exceptions give way. Delete exceptions no "
        "longer needed, or cap them per namespace with a ResourceQuota on "
        "count/accountabilityexceptions.affidavit.dev"
    )
    dropped = {f"{KIND_EXCEPTION}/{e.namespace}/{e.name}": why for e in left_out}
    return _with(index, oldest[:low], errors), dropped


def _with(
    index: PolicyIndex,
    exceptions: Sequence[Stored[AccountabilityExceptionSpec]],
    errors: dict[str, str],
) -> PolicyIndex:
    return PolicyIndex(
        index.policies,
        index.region_policies,
        exceptions,
        errors,
        exception_max_days=index.exception_max_days,
    )


def _age(exception: Stored[AccountabilityExceptionSpec]) -> tuple[datetime, str, str]:
    created = parse_time(exception.created) if exception.created else None
    return (created or _LATEST, exception.namespace or "", exception.name)
