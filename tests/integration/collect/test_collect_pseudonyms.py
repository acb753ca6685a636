"""``collect provenance|review --pseudonym-key``: predicates that name people only by pseudonyms.

Real git repositories and the real CLI; the review input is the recorded GitHub JSON of
``tests/fixtures/github`` (a fake of GitHub's API, which no test can reach). What must hold:
nobody's name, email or login is left anywhere in the predicate; the verdicts (AI involvement,
tools, independence) are those of the plain collection; the same person gets the same pseudonym in
both predicates, under the key, and ``affidavit pseudonym of`` recomputes it; a bad key is a clear
error before anything is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from collect_gitrepo import HUMAN, Repo

from affidavit.attestations.pseudonyms import is_pseudonym, is_pseudonymous_name, load_key
from affidavit.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
GITHUB = ROOT / "tests" / "fixtures" / "github"
CLAUDE = "Co-authored-by: Claude <noreply@anthropic.com>"
REVIEWER = ("Rita Reviewer", "rita@example.com")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "pseudonym.key"
    code, out, err = run(capsys, "pseudonym", "key", "-o", str(path))
    assert code == 0, err
    assert out == f"wrote {path} (key id {load_key(path).key_id})\n"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    return path


def history(make_repo: Callable[[str], Repo]) -> tuple[Repo, str, str, dict[str, str]]:
    """A release of three commits: Claude co-authored, aider-generated, and a human's."""
    repo = make_repo("shop")
    base = repo.commit("init", {"README.md": "shop\n"})
    shas = {
        "claude": repo.commit(f"auth: add login\n\n{CLAUDE}\n", {"src/auth/login.py": "x = 1\n"}),
        "aider": repo.commit(
            "fix: typo", {"README.md": "shop!\n"}, author=("Paul (aider)", "paul@example.org")
        ),
        "human": repo.commit("docs", {"docs/a.md": "a\n"}, author=REVIEWER, committer=HUMAN),
    }
    return repo, base, repo.head(), shas


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_provenance_names_nobody_and_keeps_every_verdict(
    make_repo: Callable[[str], Repo], key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, base, head, shas = history(make_repo)
    common = ("collect", "provenance", "--repo", str(repo.path), "--base", base, "--head", head)
    code, out, err = run(capsys, *common)
    assert code == 0, err
    plain = json.loads(out)
    code, out, err = run(capsys, *common, "--pseudonym-key", str(key_file))
    assert code == 0, err
    hidden = json.loads(out)

    text = json.dumps(hidden)
    for personal in ("Alice", "alice@example.com", "Paul", "paul@", "Rita", "rita@"):
        assert personal not in text, personal
    key = load_key(key_file)
    # the same verdicts: only the people differ
    assert hidden["summary"] == plain["summary"]
    for before, after in zip(plain["changes"], hidden["changes"], strict=True):
        assert after["aiInvolvement"] == before["aiInvolvement"]
        assert after["tools"] == before["tools"]
        assert after["files"] == before["files"]
        for role in ("author", "committer", "acceptedBy"):
            if role not in before:
                assert role not in after
                continue
            assert after[role]["email"] == key.of(before[role]["email"])
            assert is_pseudonym(after[role]["email"])
            assert is_pseudonymous_name(after[role]["name"])
    by_subject = {c["commit"]: c for c in hidden["changes"]}
    aider = by_subject[shas["aider"]]
    assert aider["author"]["name"] == key.of("Paul") + " (aider)"
    paul = f"{key.of('Paul')} (aider) <{key.of('paul@example.org')}>"
    assert aider["evidence"] == [  # the commit was made by Paul (aider) as author and committer
        {"kind": "identity", "detail": f"author: {paul}"},
        {"kind": "identity", "detail": f"committer: {paul}"},
    ]
    claude = by_subject[shas["claude"]]
    assert {"kind": "trailer", "detail": CLAUDE} in claude["evidence"]  # a tool, not a person


def test_the_environment_names_the_key_for_a_pipeline(
    make_repo: Callable[[str], Repo], key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, base, head, _ = history(make_repo)
    os.environ["AFFIDAVIT_PSEUDONYM_KEY_FILE"] = str(key_file)
    try:
        code, out, err = run(
            capsys,
            "collect",
            "provenance",
            "--repo",
            str(repo.path),
            "--base",
            base,
            "--head",
            head,
        )
    finally:
        del os.environ["AFFIDAVIT_PSEUDONYM_KEY_FILE"]
    assert code == 0, err
    assert "alice@example.com" not in out


def github(scenario: str) -> list[str]:
    folder = GITHUB / scenario
    return [
        "--github-pr", str(folder / "pr.json"),
        "--github-reviews", str(folder / "reviews.json"),
        "--github-commits", str(folder / "commits.json"),
    ]  # fmt: skip


@pytest.mark.parametrize("scenario", ["self-approval", "bot-approval", "approved-final-revision"])
def test_review_names_nobody_and_keeps_independence(
    scenario: str, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "collect", "review", *github(scenario))
    assert code == 0, err
    plain = json.loads(out)
    code, out, err = run(
        capsys, "collect", "review", *github(scenario), "--pseudonym-key", str(key_file)
    )
    assert code == 0, err
    hidden = json.loads(out)
    key = load_key(key_file)

    assert (
        hidden["summary"]["approvalsOnFinalRevision"]
        == plain["summary"]["approvalsOnFinalRevision"]
    )
    assert hidden["summary"]["independentApprovals"] == plain["summary"]["independentApprovals"]
    assert [r["independent"] for r in hidden["reviews"]] == [
        r["independent"] for r in plain["reviews"]
    ]
    assert [r["state"] for r in hidden["reviews"]] == [r["state"] for r in plain["reviews"]]
    people: list[dict[str, Any]] = [
        plain["changeRequest"]["author"],
        *plain["changeRequest"].get("committers", []),
    ]
    people += [r["reviewer"] for r in plain["reviews"]]
    for person in people:
        bot = person.get("isBot") and str(person.get("login", "")).endswith("[bot]")
        for field in ("name", "login", "email"):
            if person.get(field) and not bot:
                assert person[field] not in json.dumps(hidden), (scenario, field)
    for before, after in zip(plain["reviews"], hidden["reviews"], strict=True):
        who = before["reviewer"]
        if who.get("isBot") and str(who.get("login", "")).endswith("[bot]"):
            assert after["reviewer"] == who  # an account, kept readable
        elif who.get("login"):
            assert after["reviewer"]["login"] == key.of(who["login"])
    assert all(
        is_pseudonym(n) or n.endswith("[bot]") for n in hidden["summary"].get("reviewers", [])
    )


def test_the_same_person_has_one_pseudonym_and_the_key_holder_recomputes_it(
    key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "collect",
        "review",
        *github("approved-final-revision"),
        "--pseudonym-key",
        str(key_file),
    )
    assert code == 0
    hidden = json.loads(out)
    merger = hidden["changeRequest"]["mergedBy"]["login"]
    approver = [r["reviewer"]["login"] for r in hidden["reviews"] if r["state"] == "approved"]
    assert approver == [merger]  # bob approved and merged: still one person
    code, out, _ = run(capsys, "pseudonym", "of", "--key", str(key_file), "bob", "carol")
    assert code == 0
    lines = dict(line.split("\t")[::-1] for line in out.splitlines())
    assert lines["bob"] == merger
    assert lines["carol"] != merger


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"short\n", "holds 5 bytes, fewer than 32"),
        (None, "cannot read pseudonym key"),
    ],
)
def test_a_bad_key_is_refused_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "k"
    if content is not None:
        path.write_bytes(content)
    for args in (
        ("collect", "review", *github("self-approval")),
        ("collect", "provenance", "--repo", str(tmp_path / "no-repo"), "--head", "HEAD"),
        ("pseudonym", "of", "x"),
    ):
        flag = "--key" if args[0] == "pseudonym" else "--pseudonym-key"
        code, out, err = run(capsys, *args, flag, str(path))
        assert (code, out) == (2, ""), args
        assert err.startswith("error: ") and message in err, err
        assert "Traceback" not in err


@pytest.mark.parametrize("key_given", [True, False])
def test_the_github_actions_collect_step_pseudonymises_with_its_input(
    make_repo: Callable[[str], Repo], key_file: Path, tmp_path: Path, key_given: bool
) -> None:
    """The action's own step script, in bash as the runner runs it, with the real CLI."""
    import subprocess
    import sys

    import yaml

    action = yaml.safe_load((ROOT / "attestations/templates/github/action.yml").read_text())
    assert "pseudonym-key" in action["inputs"]
    (step,) = [s for s in action["runs"]["steps"] if s["name"] == "Collect ai-provenance/v1"]
    repo, base, head, _ = history(make_repo)
    out = tmp_path / "out"
    out.mkdir()
    env = {
        "BASE": base, "EVENT_NAME": "push", "PUSH_BEFORE": "", "TOOLS": "", "HEAD_SHA": head,
        "OUT": str(out),
        "PSEUDONYM_KEY": str(key_file) if key_given else "",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }  # fmt: skip
    assert set(step["env"]) == set(env) - {"PATH"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", step["run"]], cwd=repo.path,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    written = (out / "provenance.json").read_text()
    assert ("alice@example.com" in written) is not key_given
    assert (load_key(key_file).of("alice@example.com") in written) is key_given


def test_values_on_stdin_that_are_not_text_are_a_clear_error(key_file: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "affidavit.cli", "pseudonym", "of", "--key", str(key_file)],
        input=b"\xff\xfe bo\n", capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.decode() == (
        "error: the values on stdin are not UTF-8 text\n  hint: convert them with iconv\n"
    )
