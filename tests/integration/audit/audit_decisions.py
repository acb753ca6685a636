"""A period of real Decisions for the audit tests, with the figures the report must show."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text

from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.ledger import Ledger
from affidavit.policy.decision import Decision, EvidenceUsed, ImageRef, Violation

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)
SCRIPT_NAME = "<script>alert('x')</script>"


def digest(c: str) -> str:
    return "sha256:" + c * 64


IMG = {c: (f"registry.example/shop/{c}:1.0", digest(c)) for c in "abcd"}

CRITICAL = Violation(
    rule="review.critical.independentApprovals",
    policy="preset/pci-dss",
    found="0 independent approvals",
    expected="at least 1",
    fix="get an independent review",
    control="PCI DSS 6.2.3.1",
)
FRESH = Violation(
    rule="provenance.fresh",
    policy="preset/soc2",
    found="provenance 40 days old",
    expected="at most 30 days",
    fix="rebuild",
    control="SOC 2 CC8.1",
)
OWNER = Violation(
    rule="labels.owner",
    policy="AccountabilityPolicy/baseline",
    found="no label",
    expected="label team",
    fix="add the label",
)


def decision(
    n: int,
    time: str,
    outcome: str,
    *,
    region: str = "eu-west-1",
    cluster: str = "prod-eu",
    namespace: str = "shop",
    name: str | None = None,
    image: str = "a",
    evidence: tuple[str, ...] = (),
    violations: tuple[Violation, ...] = (),
    exception: str | None = None,
) -> Decision:
    ref, dg = IMG[image]
    return Decision(
        id=f"d-{n:03d}",
        time=time,
        cluster=cluster,
        region=region,
        namespace=namespace,
        kind="Deployment",
        name=name or f"app-{n}",
        operation="CREATE",
        user="alice",
        outcome=outcome,  # type: ignore[arg-type]
        mode="Enforce",
        images=(ImageRef(ref, dg),),
        violations=violations,
        evidence=tuple(EvidenceUsed(ref, p, digest("e"), "ci") for p in evidence),
        exception=exception,
    )


BOTH = (AI_PROVENANCE_V1, CODE_REVIEW_V1)

PERIOD = [
    decision(1, "2026-02-27T23:59:59Z", "denied", violations=(OWNER,)),  # before the period
    decision(2, "2026-03-01T00:00:00Z", "allowed", image="a", evidence=BOTH),
    decision(3, "2026-03-02T10:00:00Z", "allowed", image="b", evidence=(AI_PROVENANCE_V1,)),
    decision(4, "2026-03-03T10:00:00Z", "denied", namespace="pay", violations=(CRITICAL, FRESH)),
    decision(
        5,
        "2026-03-04T10:00:00Z",
        "excepted",
        region="us-east-1",
        cluster="prod-us",
        namespace="pay",
        name=SCRIPT_NAME,
        evidence=BOTH,
        violations=(CRITICAL,),
        exception="pay/inc-42",
    ),
    decision(
        6,
        "2026-03-05T10:00:00Z",
        "warned",
        region="us-east-1",
        cluster="prod-us",
        image="d",
        violations=(OWNER,),
    ),
    decision(
        7,
        "2026-03-06T10:00:00Z",
        "audited",
        region="us-east-1",
        cluster="prod-us",
        image="c",
        evidence=BOTH,
    ),
    decision(8, "2026-04-01T00:00:00Z", "allowed"),  # `until` is exclusive
]

#: verified provenance says: image a is AI-touched, image c is human-only (b, d unknown)
AI_TOUCHED = {digest("a"): True, digest("c"): False}

EXCEPTION_OBJECT: dict[str, Any] = {
    "apiVersion": "affidavit.dev/v1alpha1",
    "kind": "AccountabilityException",
    "metadata": {
        "name": "inc-42",
        "namespace": "pay",
        # the webhook's stamp: who wrote the spec, as the API server authenticated them
        "annotations": {"affidavit.dev/requested-by": "oidc:bob@example.com"},
    },
    "spec": {
        "workloads": [{"kind": "Deployment", "name": "pay*"}],
        "reason": "payment outage hotfix",
        "incidentId": "INC-42",
        "owner": "bob@example.com",
        "approvers": ["carol@example.com"],
        "expiresAt": "2026-03-10T00:00:00Z",
    },
}


def fill(ledger: Ledger) -> None:
    for d in PERIOD:
        ledger.append(d)


def tamper(url: str, seq: int) -> None:
    """Edit one stored decision behind Affidavit's back (an insider with database access)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        row = conn.execute(text("SELECT decision FROM decisions WHERE seq = :s"), {"s": seq}).one()
        edited = row.decision.replace('"outcome":"denied"', '"outcome":"allowed"')
        assert edited != row.decision
        conn.execute(
            text("UPDATE decisions SET decision = :d, outcome = 'allowed' WHERE seq = :s"),
            {"d": edited, "s": seq},
        )
    engine.dispose()
