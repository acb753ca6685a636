"""The webhook's Prometheus metrics, in their own registry so several apps can share a process.

Platform engineers alert on these: decisions by outcome and namespace, the violations behind
them by rule and policy, how evidence lookups end (evidence found, missing, registry unavailable,
too late for the budget), ledger writes that failed (each one a denial), and the latency against
the apiserver's timeout. The chart's Grafana dashboard queries exactly these names (a test scrapes
a real webhook's /metrics for every one of them).

Cardinality is bounded: outcomes, rules and lookup results are fixed sets; policies are the
cluster's own objects; namespaces get their own label value up to ``namespace_limit`` distinct
ones (the first seen), the rest are counted under ``_other`` — a cluster with thousands of
namespaces cannot blow up the scrape. Every review counts several labelled series, so ``inc``
keeps each series' child once looked up (prometheus_client's ``labels`` checks and locks on every
call); the label sets are the bounded ones above.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from affidavit.admission.owners import OUTCOMES as OWNER_OUTCOMES

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 8.0, 10.0)
OUTCOMES = ("allowed", "denied", "warned", "audited", "excepted")
#: How an evidence lookup ended: verified evidence (possibly none that verified: the policy
#: decides), no evidence could be read, the registry unavailable, or past the request's budget.
LOOKUP_RESULTS = ("evidence", "missing", "unavailable", "late")
#: The namespace label of the requests beyond ``namespace_limit`` distinct namespaces.
OTHER_NAMESPACE = "_other"
#: The namespace label of a request that could not be read (no namespace known).
NO_NAMESPACE = "_none"
DEFAULT_NAMESPACE_LIMIT = 200


def _first(validity: Callable[[], tuple[float, float]]) -> float:
    return validity()[0]


def _second(validity: Callable[[], tuple[float, float]]) -> float:
    return validity()[1]


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    namespace_limit: int = DEFAULT_NAMESPACE_LIMIT

    def __post_init__(self) -> None:
        r = self.registry
        self._namespaces: set[str] = set()
        self._lock = threading.Lock()
        self._children: dict[tuple[Counter, tuple[str, ...]], Any] = {}
        self.decisions = Counter(
            "affidavit_decisions",
            "Admission decisions by outcome and namespace (namespaces past the label limit are "
            f"{OTHER_NAMESPACE}).",
            ["outcome", "namespace"],
            registry=r,
        )
        self.violations = Counter(
            "affidavit_violations",
            "Violations in admission decisions, by rule, the policy behind it, namespace and the "
            "decision's outcome (denied, warned, audited, excepted).",
            ["rule", "policy", "namespace", "outcome"],
            registry=r,
        )
        self.lookups = Counter(
            "affidavit_evidence_lookups",
            "Evidence lookups by how they ended: evidence, missing, unavailable (the registry), "
            "late (past the request's budget).",
            ["result"],
            registry=r,
        )
        self.ledger_write_failures = Counter(
            "affidavit_ledger_write_failures",
            "Decisions that could not be recorded (ledger and buffer unavailable): each one "
            "was denied.",
            registry=r,
        )
        self.duration = Histogram(
            "affidavit_admission_duration_seconds",
            "Time to answer one AdmissionReview.",
            buckets=BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "affidavit_evidence_cache",
            "Evidence cache lookups by result (hit, miss, negative_hit).",
            ["result"],
            registry=r,
        )
        self.registry_errors = Counter(
            "affidavit_registry_errors", "Registry lookups that failed.", registry=r
        )
        self.ledger_buffered = Counter(
            "affidavit_ledger_buffered",
            "Decisions buffered in memory because the ledger was unavailable.",
            registry=r,
        )
        self.budget_exceeded = Counter(
            "affidavit_budget_exceeded",
            "Images whose evidence lookup exceeded the request budget.",
            registry=r,
        )
        self.unauthenticated = Counter(
            "affidavit_unauthenticated_requests",
            "Requests refused (401) for want of the kube-apiserver's client certificate.",
            registry=r,
        )
        self.already_judged = Counter(
            "affidavit_already_judged",
            "Admitted without a new decision: the update brings in no image (unchanged), the "
            "object runs its verified owner's images (owner), or a Pod runs them and more, "
            "and only the more was judged (owner-partial).",
            ["reason"],
            registry=r,
        )
        for reason in ("unchanged", "owner", "owner-partial"):
            self.already_judged.labels(reason=reason)
        self.owner_checks = Counter(
            "affidavit_owner_checks",
            "Owner checks of a child with a controller (a Pod, a ReplicaSet, a Job), by result: "
            "its owner's (owners), not shown to be (not-owners), or given up on the API server "
            "(timeout, busy, error): the child was then judged on its own.",
            ["result"],
            registry=r,
        )
        for result in OWNER_OUTCOMES:
            self.owner_checks.labels(result=result)
        self.judged = Counter(
            "affidavit_reviews_judged",
            "Reviews judged on the event loop (inline: every image's evidence cached, nothing "
            "to wait for) or handed to the judging threads (pool).",
            ["where"],
            registry=r,
        )
        for where in ("inline", "pool"):
            self.judged.labels(where=where)
        self.pins = Counter(
            "affidavit_pins",
            "Pod image tags pinned to their verified digest, or left as written (unresolved).",
            ["result"],
            registry=r,
        )
        for result in ("pinned", "unresolved"):
            self.pins.labels(result=result)
        for result in ("hit", "miss", "negative_hit"):
            self.cache.labels(result=result)
        for result in LOOKUP_RESULTS:
            self.lookups.labels(result=result)

    def serving_certificate(self, validity: Callable[[], tuple[float, float]]) -> None:
        """Export the served certificate's notBefore and notAfter, read at each scrape."""
        for name, what, pick in (
            ("not_before", "notBefore", _first),
            ("not_after", "notAfter", _second),
        ):
            gauge = Gauge(
                f"affidavit_serving_certificate_{name}_timestamp_seconds",
                f"The {what} (Unix time) of the TLS certificate the webhook serves; the "
                "operator or cert-manager renews it once a third of its lifetime is left.",
                registry=self.registry,
            )
            gauge.set_function(partial(pick, validity))

    def inc(self, counter: Counter, *values: str) -> None:
        """``counter.labels(*values).inc()``, the child looked up once."""
        key = (counter, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*values)
        child.inc()

    def namespace(self, name: str | None) -> str:
        """The label value for namespace ``name``: itself while under the limit."""
        if not name:
            return NO_NAMESPACE
        with self._lock:
            if name in self._namespaces:
                return name
            if len(self._namespaces) < self.namespace_limit:
                self._namespaces.add(name)
                return name
        return OTHER_NAMESPACE

    def decided(
        self,
        outcome: str,
        namespace: str | None,
        violations: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Count one decision and its violations (``(rule, policy)`` pairs)."""
        label = self.namespace(namespace)
        self.inc(self.decisions, outcome, label)
        if outcome == "allowed":
            return
        for rule, policy in violations:
            self.inc(self.violations, rule, policy or "-", label, outcome)

    def render(self) -> bytes:
        return generate_latest(self.registry)
