"""Outputs are never overwritten without --force, the same way in every command that writes one:
collect provenance, collect review, keygen, audit report and audit pack — through the real CLI,
on a real git repository and a real SQLite ledger."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from affidavit.cli.main import main
from affidavit.ledger import Ledger
from affidavit.policy.decision import Decision

GIT_ENV = {"GIT_AUTHOR_NAME": "Ana", "GIT_AUTHOR_EMAIL": "ana@example.com",
           "GIT_COMMITTER_NAME": "Ana", "GIT_COMMITTER_EMAIL": "ana@example.com"}  # fmt: skip


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for n, message in enumerate(["base", "feature\n\nReviewed-by: Bo <bo@example.com>"]):
        (repo / f"f{n}.txt").write_text(f"{n}\n")
        subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
        subprocess.run(["git", "-C", str(repo), "commit", "-qm", message], check=True,
                       env={**os.environ, **GIT_ENV})  # fmt: skip
    Ledger(f"sqlite:///{tmp_path / 'ledger.db'}").append(Decision(
        id="d-1", time="2026-03-01T10:00:00Z", cluster="prod-1", region="eu-west-1",
        namespace="shop", kind="Deployment", name="web", operation="CREATE", user="ana",
        outcome="allowed", mode="Enforce",
    ))  # fmt: skip
    return tmp_path


WRITERS = {
    "collect provenance": (["collect", "provenance", "--repo", "repo", "--head", "HEAD"], ["out"]),
    "collect review": (["collect", "review", "--trailers", "--repo", "repo", "--base", "HEAD~1",
                        "--head", "HEAD"], ["out"]),
    "keygen": (["keygen"], ["out.key", "out.pub"]),
    "audit report": (["audit", "report", "--ledger", "sqlite:///ledger.db"], ["out"]),
    "audit pack": (["audit", "pack", "--ledger", "sqlite:///ledger.db", "--since", "2026-03-01",
                    "--until", "2026-04-01"], ["out"]),
}  # fmt: skip


@pytest.mark.parametrize("command", WRITERS)
def test_an_output_is_not_overwritten_without_force(
    command: str, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COSIGN_PASSWORD", "s3cret")
    argv, written = WRITERS[command]
    for name in written:
        (workdir / name).write_text("keep me\n")
    assert main([*argv, "-o", "out"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", (
        f"error: {written[0]} already exists\n  hint: pass --force to overwrite it\n"
    ))  # fmt: skip
    assert all((workdir / name).read_text() == "keep me\n" for name in written)

    assert main([*argv, "-o", "out", "--force"]) == 0
    assert all((workdir / name).read_bytes() != b"keep me\n" for name in written)


def test_one_existing_half_of_a_key_pair_is_enough_to_refuse(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    (workdir / "ci.pub").write_text("keep me\n")
    assert main(["keygen", "-o", "ci"]) == 2
    assert capsys.readouterr().err == (
        "error: ci.pub already exists\n  hint: pass --force to overwrite it\n"
    )
    assert not (workdir / "ci.key").exists()


def test_a_signed_report_refuses_to_overwrite_its_signature(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    assert main(["keygen", "--ledger-key", "-o", "ledger"]) == 0
    (workdir / "report.md.dsse.json").write_text("keep me\n")
    argv = ["audit", "report", "--ledger", "sqlite:///ledger.db", "-o", "report.md",
            "--ledger-key", "ledger.key"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "error: report.md.dsse.json already exists\n  hint: pass --force to overwrite it\n"
    )
    assert not (workdir / "report.md").exists()
    assert main([*argv, "--force"]) == 0
