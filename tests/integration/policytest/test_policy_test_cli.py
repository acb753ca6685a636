"""Tests ``affidavit test DIR``: a policy repository's cases judged by the webhook's engine, with
exit codes a CI pipeline can act on (0 passed, 1 a case failed, 2 a case is invalid), and the
template repository (examples/policy-repo) passing its own pipeline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from affidavit.cli.main import main

TEMPLATE = Path(__file__).resolve().parents[3] / "examples" / "policy-repo"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "policy-repo"
    shutil.copytree(TEMPLATE, copy)
    return copy


def _edit(path: Path, change: dict[str, object]) -> None:
    doc = yaml.safe_load(path.read_text())
    node = doc
    *parents, last = next(iter(change)).split(".")
    for key in parents:
        node = node[key]
    node[last] = next(iter(change.values()))
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_the_template_passes_the_pipeline_it_ships(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow = yaml.safe_load(
        (TEMPLATE / ".github" / "workflows" / "affidavit-policies.yaml").read_text()
    )
    (step,) = [s for s in workflow["jobs"]["test"]["steps"] if s.get("name") == "Judge the cases"]
    assert step["run"] == "affidavit test tests"
    monkeypatch.chdir(TEMPLATE)
    assert main(step["run"].split()[1:]) == 0
    assert capsys.readouterr().out == (
        "PASS  ai-change-after-the-review (denied)\n"
        "PASS  ai-commit-pushed-before-the-review (denied)\n"
        "PASS  eu-release-from-a-us-registry (denied)\n"
        "PASS  gitlab-approval-before-the-ai-push (denied)\n"
        "PASS  reviewed-release (allowed)\n"
        "PASS  unattested-image (denied)\n"
        "6 cases: 6 passed, 0 failed\n"
    )


def test_a_tightened_policy_that_would_refuse_a_good_release_fails_with_exit_1(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(repo / "policies" / "payments-baseline.yaml",
          {"spec.require.tiers": {"critical": {"independentApprovals": 2}}})  # fmt: skip
    for name in (
        "ai-change-after-the-review",
        "ai-commit-pushed-before-the-review",
        "gitlab-approval-before-the-ai-push",
        "eu-release-from-a-us-registry",
    ):
        denied = repo / "tests" / name / "case.yaml"
        case = yaml.safe_load(denied.read_text())
        del case["expect"]["message"]  # it names the number of approvals the policy asks for
        if name in ("eu-release-from-a-us-registry", "ai-commit-pushed-before-the-review"):
            # denied already; now on its review's approvals too
            del case["expect"]["rules"]
        denied.write_text(yaml.safe_dump(case))
    assert main(["test", str(repo / "tests")]) == 1
    assert capsys.readouterr().out == (
        "PASS  ai-change-after-the-review (denied)\n"
        "PASS  ai-commit-pushed-before-the-review (denied)\n"
        "PASS  eu-release-from-a-us-registry (denied)\n"
        "PASS  gitlab-approval-before-the-ai-push (denied)\n"
        "FAIL  reviewed-release\n"
        "      expected outcome allowed, got denied\n"
        "      expected rules [], got ['review.critical.independentApprovals']\n"
        "PASS  unattested-image (denied)\n"
        "6 cases: 5 passed, 1 failed\n"
    )


def test_one_case_can_be_run_and_its_exact_message_checked(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = repo / "tests" / "unattested-image"
    _edit(case / "case.yaml", {"expect.message": "Affidavit denied something else"})
    assert main(["test", str(case)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(
        "FAIL  unattested-image\n"
        "      expected message:\n"
        "      Affidavit denied something else\n"
        "      got:\n"
        "      Affidavit denied Deployment/payments-api in namespace payments "
        "(decision test-unattested-image): 1 violation\n"
    ), out
    assert out.endswith("1 case: 0 passed, 1 failed\n"), out


def test_an_invalid_case_is_an_error_with_exit_2_and_the_others_still_run(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(repo / "tests" / "reviewed-release" / "case.yaml", {"expect.outcome": "admitted"})
    assert main(["test", str(repo / "tests")]) == 2
    case = repo / "tests" / "reviewed-release" / "case.yaml"
    assert capsys.readouterr().out == (
        "PASS  ai-change-after-the-review (denied)\n"
        "PASS  ai-commit-pushed-before-the-review (denied)\n"
        "PASS  eu-release-from-a-us-registry (denied)\n"
        "PASS  gitlab-approval-before-the-ai-push (denied)\n"
        f"ERROR reviewed-release: {case}: expect.outcome 'admitted' is not one of allowed, "
        "denied, warned, audited, excepted\n"
        "PASS  unattested-image (denied)\n"
        "6 cases: 5 passed, 0 failed, 1 invalid\n"
    )


def test_a_directory_without_cases_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: no case.yaml found under {tmp_path}\n"
        "  hint: each case is a directory with case.yaml, a manifest, evidence/\n"
    )


def test_a_keyless_pattern_a_strangers_workflow_matches_is_warned_of_once(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The policy repository's CI is where an open pattern is cheapest to catch: before it
    reaches a cluster. The cases still pass (the pattern admits what it admitted); the warning
    comes once, after the summary, on stderr."""
    github = "https://token.actions.githubusercontent.com"
    keyless = [{"name": "acme", "issuer": github, "subjectRegExp": r"https://github\.com/acme.*"}]
    policy = repo / "policies" / "payments-baseline.yaml"
    doc = yaml.safe_load(policy.read_text())
    doc["spec"]["signers"]["keyless"] = keyless
    policy.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["test", str(repo / "tests")]) == 0
    out, err = capsys.readouterr()
    assert out.endswith("6 cases: 6 passed, 0 failed\n")
    name = doc["metadata"]["name"]
    assert err == (
        f"warning: AccountabilityPolicy/{name}: keyless signer acme's subjectRegExp "
        rf"https://github\.com/acme.* (issuer {github}) also matches "
        "https://github.com/acme-intruder/app/.github/workflows/release.yml@refs/heads/main, a "
        "workflow of an owner anyone can create on github.com: end the owner's name with a `/` "
        r"in the pattern (`https://github\.com/acme/…`)" + "\n"
    )


def test_a_case_reads_a_sigstore_bundle_with_its_certificates_source(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The released provenance as ``attest --sigstore`` pushes it, signed in another
    repository's pipeline: the case that expected it allowed now fails on ``source.certified``
    (the rule the cluster applies by default), which a predicate file could never show."""
    import base64
    import json

    from cryptography.hazmat.primitives.serialization import Encoding

    from affidavit.attestations.sigstore_identity import (
        SOURCE_REPOSITORY_DIGEST,
        SOURCE_REPOSITORY_URI,
    )
    from fulcio_certs import cert, utf8

    evidence = repo / "tests" / "reviewed-release" / "evidence"
    statement = (evidence / "provenance.json").read_bytes()
    revision = json.loads(statement)["predicate"]["source"]["revision"]
    der = cert({SOURCE_REPOSITORY_URI: utf8("https://github.com/acme/scratch"),
                SOURCE_REPOSITORY_DIGEST: utf8(revision)}).public_bytes(Encoding.DER)  # fmt: skip
    (evidence / "provenance.json").unlink()
    (evidence / "provenance.sigstore.json").write_text(json.dumps({
        "verificationMaterial": {"certificate": {"rawBytes": base64.b64encode(der).decode()}},
        "dsseEnvelope": {"payload": base64.b64encode(statement).decode(),
                         "payloadType": "application/vnd.in-toto+json", "signatures": []},
    }))  # fmt: skip
    assert main(["test", str(repo / "tests" / "reviewed-release")]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  reviewed-release\n      expected outcome allowed, got denied\n")
    assert "'source.certified'" in out
