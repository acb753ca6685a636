"""The webhook's Prometheus metrics, in their own registry so several apps can share a process.

Platform engineers watch these to see what admission is doing (decisions by outcome), whether it
is fast enough for the apiserver's timeout (the latency histogram), whether the evidence cache
works (hits, misses, negative hits) and whether registries are failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 8.0, 10.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.decisions = Counter(
            "affidavit_decisions", "Admission decisions by outcome.", ["outcome"], registry=r
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
            "Admitted without a new decision: the update changes no image (unchanged) or the "
            "object runs its verified owner's images (owner).",
            ["reason"],
            registry=r,
        )
        for reason in ("unchanged", "owner"):
            self.already_judged.labels(reason=reason)
        self.pins = Counter(
            "affidavit_pins",
            "Pod image tags pinned to their verified digest, or left as written (unresolved).",
            ["result"],
            registry=r,
        )
        for result in ("pinned", "unresolved"):
            self.pins.labels(result=result)
        for outcome in ("allowed", "denied", "warned", "audited", "excepted"):
            self.decisions.labels(outcome=outcome)
        for result in ("hit", "miss", "negative_hit"):
            self.cache.labels(result=result)

    def render(self) -> bytes:
        return generate_latest(self.registry)
