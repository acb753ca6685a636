"""`affidavit explain IMAGE --json`: the effective policy (each requirement with the policy and
control behind it), the namespace's exceptions and the replayed decision as one JSON document,
through the real CLI entry point on policy and evidence files written by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from affidavit.cli.main import main
from policy_builders import IMAGE, approval, exception, policy, provenance, region_policy, review


def _policies(tmp_path: Path) -> Path:
    f = tmp_path / "policies.yaml"
    f.write_text(yaml.safe_dump_all(
        [policy(), region_policy("eu", ["eu-*"], jurisdictions=["pci-dss"]), exception("x")]
    ))  # fmt: skip
    return f


def test_the_effective_policy_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", IMAGE, "--policy", str(_policies(tmp_path)), "--region", "eu-west-1",
            "--namespace", "shop", "--at", "2026-11-29T12:00:00Z", "--json"]  # fmt: skip
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["image"], document["matched"]) == (IMAGE, True)
    assert {"rule": "review.critical.securityReview (AI-involved changes)", "value": "true",
            "source": "preset/pci-dss via RegionPolicy/eu", "control": "PCI DSS 6.2.4",
            "default": False} in document["requirements"]  # fmt: skip
    assert document["exceptions"] == [
        {"namespace": "shop", "name": "x", "applies": True, "reason": None}
    ]
    assert "decision" not in document


def test_a_replayed_decision_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "provenance.json").write_text(json.dumps(provenance()))
    (evidence / "review.json").write_text(json.dumps(review(approval("rita"))))
    argv = ["explain", IMAGE, "--policy", str(_policies(tmp_path)), "--region", "eu-west-1",
            "--namespace", "prod", "--evidence", str(evidence), "--at", "2026-11-29T12:00:00Z",
            "--json"]  # fmt: skip
    assert main(argv) == 1  # denied, as without --json
    document = json.loads(capsys.readouterr().out)
    decision = document["decision"]
    assert (decision["outcome"], decision["allowed"]) == ("denied", False)
    assert decision["violations"][0]["rule"]


def test_an_image_under_no_policy_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(policy(match={"images": ["registry.example/other/*"]})))
    assert main(["explain", IMAGE, "--policy", str(f), "--cluster", "prod-1", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "image": IMAGE,
        "matched": False,
        "unmatchedImages": {
            "setting": "Warn",
            "source": "cluster setting unmatchedImages=Warn",
        },
        "message": document["message"],
    }
    assert document["message"].startswith(f"{IMAGE}: image.unmatched (cluster setting ")


def test_a_keyless_pattern_and_what_it_also_trusts_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    github = "https://token.actions.githubusercontent.com"
    keyless = [{"name": "acme", "issuer": github, "subjectRegExp": r"https://github\.com/acme.*"}]
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(policy(signers={"keyless": keyless})))
    assert main(["explain", IMAGE, "--policy", str(f), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["trustedSigners"] == [
        {"name": "acme", "key": False, "issuer": github, "identity": "",
         "identityRegExp": r"https://github\.com/acme.*"}
    ]  # fmt: skip
    [warning] = document["warnings"]
    assert warning.startswith(
        r"keyless signer acme's subjectRegExp https://github\.com/acme.* (issuer "
        f"{github}) also matches https://github.com/acme-intruder/"
    )
