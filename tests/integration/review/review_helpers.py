"""Helpers for the code-review collector tests: fixture folders, the CLI entry point, real git repos.

A uniquely named module (not conftest) so that test modules import it unambiguously.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from affidavit.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
GITHUB = ROOT / "tests" / "fixtures" / "github"
GITLAB = ROOT / "tests" / "fixtures" / "gitlab"
SCHEMA = json.loads((ROOT / "attestations" / "code-review" / "v1" / "schema.json").read_text())


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``affidavit ARGS`` in-process through the real entry point; (exit code, out, err)."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def review_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """``affidavit collect review ARGS``, which must succeed and emit a schema-valid predicate."""
    code, out, err = run_cli(capsys, "collect", "review", *args)
    assert code == 0, err
    predicate: dict[str, Any] = json.loads(out)
    jsonschema.Draft202012Validator(SCHEMA).validate(predicate)
    return predicate


def github_args(scenario: str | Path) -> list[str]:
    folder = scenario if isinstance(scenario, Path) else GITHUB / scenario
    return [
        "--github-pr",
        str(folder / "pr.json"),
        "--github-reviews",
        str(folder / "reviews.json"),
        "--github-commits",
        str(folder / "commits.json"),
    ]


def gitlab_args(scenario: str | Path) -> list[str]:
    folder = scenario if isinstance(scenario, Path) else GITLAB / scenario
    return [
        "--gitlab-mr",
        str(folder / "mr.json"),
        "--gitlab-approvals",
        str(folder / "approvals.json"),
        "--gitlab-commits",
        str(folder / "commits.json"),
    ]


class GitRepo:
    """A real git repository in a temporary folder, with commits made by named people."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        full_env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path), **(env or {})}
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            capture_output=True,
            text=True,
            check=True,
            env=full_env,
        )
        return done.stdout.strip()

    def commit(
        self,
        message: str,
        *,
        author: tuple[str, str] = ("Alice Martin", "alice@acme.example"),
        committer: tuple[str, str] | None = None,
        filename: str | None = None,
    ) -> str:
        committer = committer or author
        self.count += 1
        name = filename or f"file{self.count}.txt"
        (self.path / name).write_text(message + "\n", encoding="utf-8")
        self.git("add", name)
        self.git("commit", "-q", "-m", message, env=self._identity(author, committer))
        return self.git("rev-parse", "HEAD")

    def merge(self, branch: str, message: str, committer: tuple[str, str]) -> str:
        self.git(
            "merge",
            "-q",
            "--no-ff",
            "-m",
            message,
            branch,
            env=self._identity(committer, committer),
        )
        return self.git("rev-parse", "HEAD")

    @staticmethod
    def _identity(author: tuple[str, str], committer: tuple[str, str]) -> dict[str, str]:
        return {
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": committer[0],
            "GIT_COMMITTER_EMAIL": committer[1],
        }
