"""Tests the CLI's habits: --version, shell completion, "did you mean", exit codes in --help,
no traceback for a user's mistake, and no silent success where nothing was done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from affidavit import __version__
from affidavit.cli.main import main
from affidavit.ledger import Ledger
from affidavit.policy.decision import Decision

AFFIDAVIT = Path(sys.executable).parent / "affidavit"
DIGEST = "sha256:" + "ab" * 32


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"], capsys) == (0, f"affidavit {__version__}\n", "")


def test_bash_completion_completes_commands_and_options() -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = {**os.environ, "_AFFIDAVIT_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(cword)}  # fmt: skip
        done = subprocess.run([AFFIDAVIT], env=env, capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert complete("affidavit col", 1) == ["collect"]
    assert complete("affidavit collect ", 2) == ["provenance", "review"]
    assert complete("affidavit decisions list --out", 3) == ["--outcome"]
    script = subprocess.run([AFFIDAVIT, "--show-completion", "bash"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "_AFFIDAVIT_COMPLETE=complete_bash" in script


def test_a_mistyped_command_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["atest"], capsys)
    assert (code, out) == (2, "")
    assert "No such command 'atest'. Did you mean 'attest', 'test'?" in err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    text = " ".join(out.replace("│", " ").split())
    assert code == 0
    assert (
        "Exit codes: 0 success; 1 denied, or a failed check or test case; 2 usage or input "
        "error (a bad flag, file, policy or key); 3 collecting or signing failed; 4 no "
        "attestation verified; 5 registry unreachable or image missing; 6 ledger unavailable "
        "or its chain broken (a report over it is still written); 7 Kubernetes unreachable or "
        "refused."
    ) in text


# -- no traceback for a user's mistake ---------------------------------------------------------


def test_keygen_into_a_directory_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "nonexistent" / "x"
    assert run(["keygen", "--output", str(prefix)], capsys) == (2, "", (
        f"error: cannot write {prefix}.key: the directory {prefix.parent} does not exist\n"
        "  hint: create it first, or choose another -o/--output\n"
    ))  # fmt: skip


def _repo(tmp_path: Path, commits: int = 2) -> Path:
    repo = tmp_path / "repo"
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ana", "GIT_AUTHOR_EMAIL": "ana@example.com",
           "GIT_COMMITTER_NAME": "Ana", "GIT_COMMITTER_EMAIL": "ana@example.com"}  # fmt: skip
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for n in range(commits):
        (repo / f"f{n}.txt").write_text(f"{n}\n")
        subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
        subprocess.run(["git", "-C", str(repo), "commit", "-qm", f"c{n}"], check=True, env=env)
    return repo


def test_collect_into_a_directory_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo(tmp_path)
    out = tmp_path / "nonexistent" / "x.json"
    code, stdout, err = run(["collect", "provenance", "--repo", str(repo), "--head", "HEAD",
                             "-o", str(out)], capsys)  # fmt: skip
    assert (code, stdout, err) == (2, "", (
        f"error: cannot write {out}: No such file or directory\n"
        "  hint: create its directory first, or choose another --output\n"
    ))  # fmt: skip


def test_a_policy_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_bytes(b"kind: AccountabilityPolicy\nmetadata: {name: caf\xe9}\n")
    assert run(["explain", "--policy", str(bad), "registry.example/a:1"], capsys) == (2, "", (
        f"error: policy file {bad} is not UTF-8 text (byte 47: 0xe9)\n"
        "  hint: save it as UTF-8; Kubernetes objects are UTF-8 YAML or JSON\n"
    ))  # fmt: skip


# -- no silent success --------------------------------------------------------------------------


def test_an_empty_or_reversed_commit_range_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo(tmp_path)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    base = ["collect", "provenance", "--repo", str(repo)]
    assert run([*base, "--base", "HEAD", "--head", "HEAD"], capsys) == (2, "", (
        f"error: the range HEAD..HEAD is empty: --base and --head are the same commit "
        f"{head[:12]}\n"
        "  hint: --base is the last released revision, --head the one the image is built from\n"
    ))  # fmt: skip
    assert run([*base, "--base", "HEAD", "--head", "HEAD~1"], capsys) == (2, "", (
        "error: the range HEAD..HEAD~1 is empty: --head HEAD~1 is an ancestor of --base HEAD\n"
        "  hint: swap them: --base is the older, already released revision\n"
    ))  # fmt: skip
    code, out, _ = run([*base, "--base", "HEAD~1", "--head", "HEAD"], capsys)
    assert code == 0 and '"commits": 1' in out


def test_since_after_until_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = f"sqlite:///{tmp_path / 'never-opened.db'}"
    for command in (["decisions", "list"], ["audit", "report"]):
        argv = [*command, "--ledger", ledger, "--since", "2026-03-01", "--until", "2026-02-01"]
        assert run(argv, capsys) == (2, "", (
            "error: --since 2026-03-01T00:00:00Z is not before --until 2026-02-01T00:00:00Z: "
            "the period is empty\n"
            "  hint: --since is inclusive and --until exclusive; swap them if reversed\n"
        )), command  # fmt: skip


def _ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url).append(Decision(
        id="d-1", time="2026-03-01T10:00:00Z", cluster="prod-1", region="eu-west-1",
        namespace="shop", kind="Deployment", name="web", operation="CREATE", user="ana",
        outcome="allowed", mode="Enforce",
    ))  # fmt: skip
    return url


def test_an_unknown_outcome_or_region_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _ledger(tmp_path)
    assert run(["decisions", "list", "--ledger", url, "--outcome", "refused"], capsys) == (2, "", (
        "error: --outcome 'refused' is not an outcome\n"
        "  hint: one of allowed, denied, warned, audited, excepted\n"
    ))  # fmt: skip
    assert run(["audit", "report", "--ledger", url, "--region", "eu-west1"], capsys) == (2, "", (
        "error: --region 'eu-west1': no decision of this period was made in that region\n"
        "  hint: regions in this period: eu-west-1\n"
    ))  # fmt: skip
    code, out, _ = run(["audit", "report", "--ledger", url, "--region", "eu-west-1"], capsys)
    assert code == 0 and out


def test_an_empty_policy_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "policies.yaml"
    empty.write_text("# nothing yet\n")
    assert run(["explain", "--policy", str(empty), "registry.example/a:1"], capsys) == (2, "", (
        f"error: policy file {empty} is empty: no policy, region policy or exception in it\n"
        "  hint: check the path; an empty file would leave every image unmatched\n"
    ))  # fmt: skip


def test_attest_type_must_be_a_uri(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    predicate = tmp_path / "p.json"
    predicate.write_text("{}")
    argv = ["attest", f"127.0.0.1:1/acme/app@{DIGEST}", "--predicate", str(predicate),
            "--type", "ai-provenance", "--key", str(tmp_path / "ci.key")]  # fmt: skip
    assert run(argv, capsys) == (2, "", (
        "error: --type 'ai-provenance' is not a URI; in-toto predicate types are URIs\n"
        "  hint: for example --type https://affidavit.dev/attestations/ai-provenance/v1 or "
        "--type https://affidavit.dev/attestations/code-review/v1\n"
    ))  # fmt: skip
