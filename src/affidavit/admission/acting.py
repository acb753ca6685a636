"""Whether an exception's requester may act as the deployer, as the API server answers it.

Why: under ``separateRequester`` an exception admits nothing its own requester deploys, and the
deployer is the name the admission request gives. But whoever may impersonate a ServiceAccount
(the built-in ``edit`` role may, for every ServiceAccount of its namespace), mint a token for
it, or impersonate a user, deploys under that name: the requester of an exception applied the
workload as the namespace's deploy ServiceAccount (``kubectl --as=system:serviceaccount:NS:ci``),
and the exception admitted it as if a second person had. So where an exception would admit
under ``separateRequester``, the webhook asks the API server (a SubjectAccessReview with the
requester's name and the groups stamped with it, ``admission.stamp``) whether its requester may:

- impersonate the deployer: ``impersonate`` on ``serviceaccounts`` NAME in NS, or on ``users``
  NAME for anyone else;
- for a ServiceAccount, mint its token: ``create`` on ``serviceaccounts/token`` NAME in NS.

A requester who may is the deployer's equal, and its exception is the deployer's own. An answer
the API server could not give counts as "may" (fail closed: the exception then admits nothing
for this deployer until it can be asked again). Answers are remembered for ``ttl`` seconds.
What this does not see: a Secret holding a legacy ServiceAccount token the requester may read,
or a CI system the requester may trigger that deploys under its own name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from affidavit.errors import ClusterError

log = logging.getLogger("affidavit.admission")

SERVICE_ACCOUNT = "system:serviceaccount:"
#: Answers remembered at most (the least recently asked dropped first).
MAX_ANSWERS = 4096


class AccessReviewer(Protocol):
    """Asks the API server whether ``user`` in ``groups`` may do what ``attributes`` say (a
    SubjectAccessReview's resourceAttributes); raises ClusterError when it cannot answer."""

    def review_access(
        self, user: str, groups: tuple[str, ...], attributes: Mapping[str, str]
    ) -> bool: ...


def acting_attributes(deployer: str) -> list[dict[str, str]]:
    """What lets someone act as ``deployer``, as SubjectAccessReview resourceAttributes."""
    if deployer.startswith(SERVICE_ACCOUNT):
        namespace, _, name = deployer.removeprefix(SERVICE_ACCOUNT).partition(":")
        if namespace and name and ":" not in name:
            return [
                {"verb": "impersonate", "resource": "serviceaccounts",
                 "namespace": namespace, "name": name},
                {"verb": "create", "resource": "serviceaccounts", "subresource": "token",
                 "namespace": namespace, "name": name},
            ]  # fmt: skip
    return [{"verb": "impersonate", "resource": "users", "name": deployer}]


@dataclass
class Acting:
    """Who of an exception's requesters may act as a deployer (remembered ``ttl`` seconds)."""

    reviewer: AccessReviewer
    ttl: float = 30.0
    _answers: OrderedDict[tuple[str, tuple[str, ...], str], tuple[bool, float]] = field(
        default_factory=OrderedDict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def who_may_act_as(
        self,
        deployer: str,
        requesters: Iterable[tuple[str, tuple[str, ...] | None]],
        *,
        remembered_only: bool = False,
    ) -> frozenset[str] | None:
        """Those of ``requesters`` (name, stamped groups: None when not known, asked with none)
        the API server lets act as ``deployer``; the deployer itself is left out. With
        ``remembered_only``, None where an answer would have to be asked for (no I/O)."""
        found = set()
        for user, groups in dict.fromkeys(requesters):
            if user == deployer:
                continue
            may = self._may(user, groups or (), deployer, remembered_only)
            if may is None:
                return None
            if may:
                found.add(user)
        return frozenset(found)

    def _may(
        self, user: str, groups: tuple[str, ...], deployer: str, remembered_only: bool
    ) -> bool | None:
        key = (user, groups, deployer)
        now = time.monotonic()
        with self._lock:
            hit = self._answers.get(key)
            if hit is not None and hit[1] > now:
                self._answers.move_to_end(key)
                return hit[0]
        if remembered_only:
            return None
        try:
            may = any(
                self.reviewer.review_access(user, groups, attributes)
                for attributes in acting_attributes(deployer)
            )
        except ClusterError as e:
            log.warning(
                "cannot ask whether %r may act as %r (%s): counted as may, so its "
                "exception admits nothing for this deployer now",
                user,
                deployer,
                e.message,
            )
            return True  # not remembered: asked again next time
        with self._lock:
            self._answers[key] = (may, now + self.ttl)
            self._answers.move_to_end(key)
            while len(self._answers) > MAX_ANSWERS:
                self._answers.popitem(last=False)
        return may
