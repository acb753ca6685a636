"""The audit report from the decisions' own snapshots: no ``--exceptions`` file, no registry.

Decisions recorded with a snapshot carry each image's AI involvement (from the provenance
verified at decision time) and the details of the exceptions they used; the report reads those.
An exception object edited or deleted since does not change what the report says was approved.
A row recorded before snapshots still counts (undetermined, unless ``--key`` verifies it
now), so old and new rows live in one ledger.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from audit_decisions import CRITICAL, EXCEPTION_OBJECT, decision

from affidavit.cli.main import main
from affidavit.ledger import Ledger
from affidavit.policy.decision import AiInvolvement, Decision, ExceptionUsed, Snapshot

INDEX = "sha256:" + "f" * 64
INC_42 = ExceptionUsed(
    namespace="pay",
    name="inc-42",
    owner="olga@example.com",
    incident_id="INC-42",
    approvers=("victor@example.com", "carol@example.com"),
    expires_at="2026-03-10T00:00:00Z",
    reason="payment outage hotfix",
    requested_by="oidc:olga@example.com",
)


def _with(d: Decision, *, ai: int | None, exceptions: tuple[ExceptionUsed, ...] = ()) -> Decision:
    """``d`` with a snapshot: its image had ``ai`` AI-assisted commits of 3 (None: no provenance)."""
    ((ref, digest),) = [(i.ref, i.digest) for i in d.images]
    image = (
        AiInvolvement(ref, digest)
        if ai is None
        else AiInvolvement(ref, digest, "sha256:" + "e" * 64, commits=3, assisted=ai)
    )
    return dataclasses.replace(d, snapshot=Snapshot(INDEX, images=(image,), exceptions=exceptions))


def test_the_report_reads_ai_involvement_and_exceptions_from_the_snapshots(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.append(_with(decision(1, "2026-03-01T10:00:00Z", "allowed", image="a"), ai=1))
    ledger.append(_with(decision(2, "2026-03-02T10:00:00Z", "allowed", image="c"), ai=0))
    excepted = decision(
        3,
        "2026-03-03T10:00:00Z",
        "excepted",
        namespace="pay",
        image="a",
        violations=(CRITICAL,),
        exception="pay/inc-42",
    )
    ledger.append(_with(excepted, ai=2, exceptions=(INC_42,)))
    ledger.append(_with(decision(4, "2026-03-04T10:00:00Z", "denied", image="b"), ai=None))
    ledger.append(decision(5, "2026-03-05T10:00:00Z", "allowed", image="d"))  # before snapshots

    args = ["audit", "report", "--ledger", ledger_url, "--since", "2026-03-01", "--format", "json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["aiTouched"] == {
        "source": "ledger",
        "ai": {"admitted": 2, "denied": 0},
        "human": {"admitted": 1, "denied": 0},
        "undetermined": {"admitted": 1, "denied": 1},
        "reviewOfAdmitted": {"independent": 0, "approved": 0, "none": 2},
    }
    row = {
        "exception": "pay/inc-42",
        "uses": 1,
        "workloads": ["prod-eu/pay/Deployment/app-3"],
        "firstUse": "2026-03-03T10:00:00Z",
        "lastUse": "2026-03-03T10:00:00Z",
        "owner": "olga@example.com",
        "approvers": ["victor@example.com", "carol@example.com"],
        "requestedBy": "oidc:olga@example.com",
        "reason": "payment outage hotfix",
        "incidentId": "INC-42",
        "expiresAt": "2026-03-10T00:00:00Z",
        "controls": ["PCI DSS 6.2.3.1"],
        "damaged": False,
    }
    assert doc["exceptions"] == [row]

    # The object as it reads today (another owner and approver) does not rewrite the record.
    exc = tmp_path / "exceptions.yaml"
    exc.write_text(yaml.safe_dump(EXCEPTION_OBJECT))
    assert main([*args, "--exceptions", str(exc)]) == 0
    assert json.loads(capsys.readouterr().out)["exceptions"] == [row]
