"""Whether a digest was judged and admitted for a tag in a namespace, asked of the ledger.

The pinning webhook creates a controller's Pod as ``X:T@sha256:D`` while its owner's template
says ``X:T``, so the owner check cannot compare image sets as written. Dropping the digest would
reopen the hole pinning closes: after a retag to an unreviewed ``D2``, a Pod pinned to ``D2``
would run on the old decision. So a pinned child matches its owner's tag only when the ledger
holds an admitting decision for ``X:T`` at ``D`` in the child's namespace; one that admitted it
despite violations (under an AccountabilityException, or in Warn or Audit mode) counts only for
the workload it was about (its owner, or the owner's controller): an exception may name one
workload, a policy may enforce since, and the evidence fell short for every other workload.

Positive answers are cached briefly and in bounded number (a decision never stops having been
taken); negative answers are not, so a decision just recorded counts at once. Anything unsure
(no ledger, an error, a database that just failed) is "not judged": the child is then judged
like any object (fail closed). After an error the ledger is left alone for ``retry_interval``
seconds, so an unreachable database costs the owner check's workers one connect timeout, not one
per Pod. The caller bounds the time a lookup may take (the owner check's timeout).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from affidavit.attestations.reference import canonical_image
from affidavit.errors import InputError

log = logging.getLogger("affidavit.admission")


class AdmittedQuery(Protocol):
    def admitted(
        self, namespace: str, ref: str, digest: str, workloads: Sequence[tuple[str, str]] = ()
    ) -> bool:
        """Whether a decision in ``namespace`` admitted ``ref`` at ``digest`` (one with
        violations only for ``workloads``, ``(kind, name)`` pairs)."""
        ...


class JudgedDigests:
    """``Ledger.admitted`` with a bounded cache of positive answers and a back-off on errors."""

    def __init__(
        self,
        ledger: AdmittedQuery,
        *,
        ttl: float = 60.0,
        max_entries: int = 4096,
        retry_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._ttl = ttl
        self._max = max_entries
        self._retry = retry_interval
        self._clock = clock
        self._failed_at: float | None = None
        self._cache: OrderedDict[tuple[str, str, str, tuple[tuple[str, str], ...]], float] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def admitted(
        self, namespace: str, ref: str, digest: str, workloads: Sequence[tuple[str, str]] = ()
    ) -> bool:
        """``Ledger.admitted``: a decision with violations counts for ``workloads`` only."""
        try:
            ref = canonical_image(ref)  # the ledger records canonical names
        except InputError:
            return False
        workloads = tuple(workloads)
        key = (namespace, ref, digest, workloads)
        now = self._clock()
        with self._lock:
            expires = self._cache.get(key)
            if expires is not None and expires > now:
                self._cache.move_to_end(key)
                return True
            self._cache.pop(key, None)
            if self._failed_at is not None and now - self._failed_at < self._retry:
                return False
        try:
            found = self._ledger.admitted(namespace, ref, digest, workloads)
        except Exception as e:  # the ledger broke: not shown to be judged
            log.warning(
                "cannot tell whether %s at %s was admitted in %s: %s",
                ref,
                digest,
                namespace,
                getattr(e, "message", None) or f"{type(e).__name__}: {e}",
            )
            with self._lock:
                self._failed_at = self._clock()
            return False
        with self._lock:
            self._failed_at = None
            if found:
                self._cache[key] = self._clock() + self._ttl
                self._cache.move_to_end(key)
                while len(self._cache) > self._max:
                    self._cache.popitem(last=False)
        return found
