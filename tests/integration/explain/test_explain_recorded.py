"""Tests `affidavit explain --decision ID`: the command a denial message points release managers to."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from affidavit.cli.main import main
from affidavit.ledger import Ledger
from affidavit.policy.decision import Decision, ImageRef, PolicyRef, Violation

DIGEST = "sha256:" + "7b" * 32


def _decision() -> Decision:
    return Decision(
        id="d-42",
        time="2026-11-29T01:00:00Z",
        cluster="prod-eu",
        region="eu-west-1",
        namespace="payments",
        kind="Deployment",
        name="api",
        operation="CREATE",
        user="alice",
        outcome="denied",
        mode="Enforce",
        images=(ImageRef(ref=f"registry.example/api@{DIGEST}", digest=DIGEST),),
        violations=(
            Violation(
                rule="review.critical.independentApprovals",
                policy="AccountabilityPolicy/baseline",
                found="0 independent approvals",
                expected="at least 1",
                fix="get an independent approval",
            ),
        ),
        policies=(PolicyRef("AccountabilityPolicy", "baseline", 3),),
    )


def test_recorded_decision_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    record = Ledger(url).append(_decision())
    assert main(["explain", "--decision", "d-42", "--ledger", url]) == 0
    out = capsys.readouterr().out
    assert "Decision d-42: denied (mode Enforce)" in out
    assert "review.critical.independentApprovals (AccountabilityPolicy/baseline)" in out
    assert "found:    0 independent approvals" in out
    assert f"ledger: seq {record.seq}, hash {record.hash}" in out


def test_unknown_decision_names_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url).append(_decision())
    assert main(["explain", "--decision", "nope", "--ledger", url]) == 2
    err = capsys.readouterr().err
    assert f"error: decision nope is not in the ledger {url}\n" in err
    assert "hint: pass the ledger the webhook writes to with --ledger or $AFFIDAVIT_LEDGER" in err


def test_unknown_decision_names_the_ledger_without_its_password(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the server trusts loopback, so the password is sent and ignored: what the error shows is
    # what a CI log would keep
    url = postgres_url.replace("://affidavit@", "://affidavit:s3cret-pw@")
    Ledger(url).append(_decision())
    assert main(["explain", "--decision", "nope", "--ledger", url]) == 2
    err = capsys.readouterr().err
    assert "s3cret-pw" not in err
    shown = url.replace("s3cret-pw", "***")
    assert f"error: decision nope is not in the ledger {shown}\n" in err


def test_explain_needs_an_image_and_policy_or_a_decision(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain"]) == 2
    assert "error: give IMAGE and at least one --policy FILE, or --decision ID" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("stored", "detail"),
    [
        ('{"id": "d-42"}', "Decision.__init__() missing 10 required positional arguments"),
        (
            "[" * 100_000 + "]" * 100_000,
            "it holds no decision (not a JSON object, or an empty one)",
        ),
    ],
    ids=["fields-removed", "nested-too-deeply"],
)
def test_an_edited_row_is_named_not_a_stack_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stored: str, detail: str
) -> None:
    """A row edited behind Affidavit's back (fields removed, or JSON nested too deeply) ended
    explain in TypeError or RecursionError instead of pointing at the edited row."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    record = Ledger(url).append(_decision())
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute("UPDATE decisions SET decision = ? WHERE seq = ?", (stored, record.seq))
    assert main(["explain", "--decision", "d-42", "--ledger", url]) == 6
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: decision d-42 (ledger seq {record.seq}) is not a decision this Affidavit reads: "
        f"{detail}"
    )
    assert err.endswith(
        "  hint: check whether the row was edited: affidavit decisions verify-chain --ledger URL "
        "(the ledger the webhook writes to)\n"
    )
