"""Tests `affidavit trace`: the four questions for an image, from its verified attestations only."""

from __future__ import annotations

from pathlib import Path

import pytest

from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.registry import RegistryClient
from affidavit.cli.main import main
from affidavit.demo.github_records import Approval
from affidavit.demo.pipeline import build_image, release
from affidavit.demo.sample import BO, make_sample_repo
from affidavit.demo.services import LocalRegistry


def _keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = generate_key_pair("ecdsa-p256")
    (tmp_path / "ci.key").write_bytes(private)
    (tmp_path / "ci.pub").write_bytes(public)
    return tmp_path / "ci.key", tmp_path / "ci.pub"


def test_trace_answers_for_a_released_image(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub = _keys(tmp_path)
    sample = make_sample_repo(tmp_path / "repo")
    with RegistryClient(insecure_hosts={registry.host}) as client:
        rel = release(
            client, registry.host, "trace/app", sample, sample.pushed_after_review,
            [Approval("bo", BO[0], sample.reviewed)], load_signer(key), tmp_path,
        )  # fmt: skip
    assert main(["trace", rel.image, "--key", str(pub)]) == 0
    out = capsys.readouterr().out
    assert f"  digest {rel.digest}, built from revision {sample.pushed_after_review}" in out
    assert "   yes: 3 of 4 commits were AI-assisted or generated" in out
    assert "   Claude Code, aider" in out
    assert (
        f"   - {sample.pushed_after_review[:12]} accepted by Ana Developer <ana@example.com>"
        " at 2026-11-04T08:30:00+00:00" in out
    )
    assert (
        "   https://github.com/acme/payments-api/pull/42: 0 approvals on the final revision, "
        "0 independent; reviewers: bo" in out
    )


def test_trace_refuses_an_image_without_verified_provenance(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, pub = _keys(tmp_path)
    with RegistryClient(insecure_hosts={registry.host}) as client:
        image = build_image(client, registry.host, "trace/bare", "ab" * 20)
    assert main(["trace", str(image), "--key", str(pub)]) == 4
    err = capsys.readouterr().err
    assert (
        f"error: {image}: no verified https://affidavit.dev/attestations/ai-provenance/v1 "
        "attestation (found: nothing verified)" in err
    )
    assert "hint: run `affidavit collect provenance` and `affidavit attest`" in err
