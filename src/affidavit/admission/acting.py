"""Whether an exception's requester and the deployer may act as each other, as the API server
answers it.

Why: under ``separateRequester`` an exception admits nothing its own requester deploys, and the
deployer is the name the admission request gives. But whoever may impersonate a ServiceAccount
(the built-in ``edit`` role may, for every ServiceAccount of its namespace), mint a token for
it, or impersonate a user, acts under that name: the requester of an exception applied the
workload as the namespace's deploy ServiceAccount, or wrote the exception as it and deployed as
themself, and the exception admitted it as if a second person had. So where an exception would
admit under ``separateRequester``, the webhook asks the API server (SubjectAccessReviews): may
the requester, in the groups stamped with its name (``admission.stamp``), act as the deployer;
and where the requester is a ServiceAccount, may the deployer, in the groups of its admission
request, act as it. (To write an exception as a user one must impersonate users, which only
cluster administrators may; asking that of every deployer would refuse every exception under
this rule to whoever administers the cluster.) To act as someone is to:

- impersonate them: ``impersonate`` on ``serviceaccounts`` NAME in NS, or on ``users`` NAME;
- for a ServiceAccount, mint its token: ``create`` on ``serviceaccounts/token`` NAME in NS.

Either yes, and the exception is the deployer's own. So is an exception whose requester's
groups are not known (stamped before groups were, more of them than are read, or without
``system:authenticated``, which the API server gives every authenticated name: a stamp edited
while an older webhook ran), and one whose question the API server did not answer in the
review's time (fail closed: the exception admits nothing for this deployer until asked again).
Answers are remembered for ``ttl`` seconds, unanswered ones for ``retry`` seconds; at most
``MAX_REQUESTERS`` requesters are asked about for one review, the rest count as unanswered.
What this does not see: a Secret holding a legacy ServiceAccount token the requester may read,
a Pod or Job the requester may start as the ServiceAccount, a CI system the requester may run.
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
AUTHENTICATED = "system:authenticated"
#: Answers remembered at most (the least recently asked dropped first).
MAX_ANSWERS = 4096
#: Requesters asked about for one review at most.
MAX_REQUESTERS = 8

#: Why a requester counts as the deployer, as the denial says it (``policy.rules``).
ACTS_AS = "who may act as the deployer: impersonate it or mint its token"
ACTED_AS = "as whom the deployer may act: impersonate or mint a token"
UNKNOWN = (
    "of whom it is not known whether either may act as the other: groups not stamped with the "
    "name (re-apply the exception's spec), or no answer from the API server in time"
)


class AccessReviewer(Protocol):
    """Asks the API server whether ``user`` in ``groups`` may do what ``attributes`` say (a
    SubjectAccessReview's resourceAttributes); raises ClusterError when it cannot answer."""

    def review_access(
        self,
        user: str,
        groups: tuple[str, ...],
        attributes: Mapping[str, str],
        timeout: float | None = None,
    ) -> bool: ...


def acting_attributes(name: str) -> list[dict[str, str]]:
    """What lets someone act as ``name``, as SubjectAccessReview resourceAttributes."""
    if name.startswith(SERVICE_ACCOUNT):
        namespace, _, account = name.removeprefix(SERVICE_ACCOUNT).partition(":")
        if namespace and account and ":" not in account:
            return [
                {"verb": "impersonate", "resource": "serviceaccounts",
                 "namespace": namespace, "name": account},
                {"verb": "create", "resource": "serviceaccounts", "subresource": "token",
                 "namespace": namespace, "name": account},
            ]  # fmt: skip
    return [{"verb": "impersonate", "resource": "users", "name": name}]


Key = tuple[str, tuple[str, ...], str]  # who asks, in which groups, to act as whom


@dataclass
class Acting:
    """Which of an exception's requesters count as the deployer (answers remembered)."""

    reviewer: AccessReviewer
    ttl: float = 30.0
    retry: float = 5.0
    #: How long one question may wait for the API server.
    timeout: float = 2.0
    _answers: OrderedDict[Key, tuple[bool | None, float]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def who_counts_as(
        self,
        deployer: str,
        deployer_groups: tuple[str, ...],
        requesters: Iterable[tuple[str, tuple[str, ...] | None]],
        *,
        deadline: float | None = None,
        remembered_only: bool = False,
    ) -> tuple[tuple[str, str], ...] | None:
        """(requester, why) for each of ``requesters`` (name, stamped groups: None when not
        known) that counts as ``deployer``, sorted. With ``remembered_only``, None where a
        question would have to be asked (no I/O); past ``deadline`` (monotonic), questions are
        not asked and count as unanswered."""
        found: dict[str, str] = {}
        for n, (user, groups) in enumerate(dict.fromkeys(requesters)):
            if user == deployer or user in found:
                continue
            if groups is None or AUTHENTICATED not in groups or n >= MAX_REQUESTERS:
                found[user] = UNKNOWN
                continue
            questions = [((user, groups, deployer), ACTS_AS)]
            if user.startswith(SERVICE_ACCOUNT):  # the deployer may have written it as that
                questions.append(((deployer, deployer_groups, user), ACTED_AS))
            for key, why in questions:
                may = self._may(key, deadline, remembered_only)
                if may == "ask":
                    return None
                if may is None:
                    found[user] = UNKNOWN
                    break
                if may:
                    found[user] = why
                    break
        return tuple(sorted(found.items()))

    def _may(self, key: Key, deadline: float | None, remembered_only: bool) -> bool | str | None:
        """The answer (None: not given), or "ask" when only remembered answers may be used."""
        now = time.monotonic()
        with self._lock:
            hit = self._answers.get(key)
            if hit is not None and hit[1] > now:
                self._answers.move_to_end(key)
                return hit[0]
        if remembered_only:
            return "ask"
        user, groups, target = key
        left = self.timeout if deadline is None else min(self.timeout, deadline - now)
        may: bool | None = None
        if left > 0.05:
            try:
                may = any(
                    self.reviewer.review_access(user, groups, attributes, timeout=left)
                    for attributes in acting_attributes(target)
                )
            except ClusterError as e:
                log.warning(
                    "cannot ask whether %r may act as %r (%s): counted as may, so the "
                    "exception admits nothing for this deployer now",
                    user,
                    target,
                    e.message,
                )
        with self._lock:
            self._answers[key] = (may, now + (self.ttl if may is not None else self.retry))
            self._answers.move_to_end(key)
            while len(self._answers) > MAX_ANSWERS:
                self._answers.popitem(last=False)
        return may
