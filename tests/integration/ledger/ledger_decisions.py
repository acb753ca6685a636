"""Decisions for ledger tests (a helper module with a unique name, imported by the tests)."""

from __future__ import annotations

import itertools

from affidavit.policy.decision import Decision, ImageRef, Violation

_counter = itertools.count(1)


def make_decision(
    *,
    outcome: str = "allowed",
    namespace: str = "shop",
    image: str = "registry.example/shop/web:1.0",
    digest: str | None = "sha256:" + "a" * 64,
    time: str = "2026-03-01T10:00:00Z",
    did: str | None = None,
) -> Decision:
    n = next(_counter)
    violations: tuple[Violation, ...] = ()
    if outcome == "denied":
        violations = (
            Violation(
                rule="provenance.present",
                policy="AccountabilityPolicy/baseline",
                found="no ai-provenance/v1 attestation",
                expected="a signed ai-provenance/v1 attestation",
                fix="run `affidavit attest` in the pipeline",
                image=image,
            ),
        )
    return Decision(
        id=did or f"d-{n:06d}",
        time=time,
        cluster="prod-1",
        region="eu-west-1",
        namespace=namespace,
        kind="Deployment",
        name=f"web-{n}",
        operation="CREATE",
        user="alice",
        outcome=outcome,  # type: ignore[arg-type]
        mode="Enforce",
        images=(ImageRef(ref=image, digest=digest),),
        violations=violations,
    )
