"""A sample git repository with human and AI-assisted commits, as a real team would leave it.

The demo and the end-to-end tests need history that exercises the conventions AI tools really
leave (a Claude Code co-author trailer on authentication code, an aider author suffix on docs,
an explicit human declaration, an undeclared commit), plus a later AI-assisted push after the
reviewer approved: the case a differentiated-review policy exists to catch.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from affidavit.errors import CollectError

ANA = ("Ana Developer", "ana@example.com")
BO = ("Bo Reviewer", "bo@example.com")
REPOSITORY = "https://github.com/acme/payments-api"


@dataclass(frozen=True)
class SampleRepo:
    path: Path
    base: str  # the root commit: the range base..reviewed is what the first image ships
    reviewed: str  # head of the pull request when Bo approved it
    pushed_after_review: str  # an AI-assisted change to auth code pushed after the approval


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
    except subprocess.CalledProcessError as e:
        raise CollectError(f"git {' '.join(args)} failed in {repo}: {e.stderr.strip()}") from e
    return done.stdout.strip()


def _commit(
    repo: Path,
    files: dict[str, str],
    message: str,
    when: str,
    author: tuple[str, str] = ANA,
    committer: tuple[str, str] = ANA,
) -> str:
    for rel, text in files.items():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        _git(repo, "add", rel)
    env = {
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": committer[0],
        "GIT_COMMITTER_EMAIL": committer[1],
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
    }
    _git(repo, "commit", "-q", "-m", message, env=env)
    return _git(repo, "rev-parse", "HEAD")


def make_sample_repo(path: Path) -> SampleRepo:
    """Create the sample repository at ``path`` (which must not exist or be empty)."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", ANA[0])
    _git(path, "config", "user.email", ANA[1])
    _git(path, "remote", "add", "origin", REPOSITORY)
    base = _commit(
        path,
        {
            "README.md": "# payments-api\n",
            "src/app/main.py": "def main() -> None:\n    print('ok')\n",
            ".affidavit/tiers.yaml": (
                "tiers:\n"
                "  - tier: critical\n    paths: ['src/auth/**', 'src/payments/**']\n"
                "  - tier: low\n    paths: ['docs/**', '*.md']\n"
                "default: standard\n"
            ),
        },
        "Initial service skeleton\n\nAI-Assisted: no\n",
        "2026-11-02T09:00:00+00:00",
    )
    _commit(
        path,
        {
            "src/auth/login.py": (
                "MAX_ATTEMPTS = 5\n\n\ndef allowed(attempts: int) -> bool:\n"
                "    return attempts < MAX_ATTEMPTS\n"
            )
        },
        "Add login rate limiting\n\nCo-Authored-By: Claude Opus 4.6 <noreply@anthropic.com>\n",
        "2026-11-03T10:15:00+00:00",
    )
    _commit(
        path,
        {"docs/usage.md": "Run `payments-api` behind the gateway.\n"},
        "aider: document usage",
        "2026-11-03T11:00:00+00:00",
        author=("Ana Developer (aider)", ANA[1]),
        committer=("Ana Developer (aider)", ANA[1]),
    )
    reviewed = _commit(
        path,
        {"src/app/main.py": "def main() -> None:\n    print('ready')\n"},
        "Say ready on start",
        "2026-11-03T12:00:00+00:00",
    )
    pushed = _commit(
        path,
        {
            "src/auth/login.py": (
                "MAX_ATTEMPTS = 10\n\n\ndef allowed(attempts: int) -> bool:\n"
                "    return attempts <= MAX_ATTEMPTS\n"
            )
        },
        "Relax login rate limit\n\nCo-Authored-By: Claude Opus 4.6 <noreply@anthropic.com>\n",
        "2026-11-04T08:30:00+00:00",
    )
    return SampleRepo(path=path, base=base, reviewed=reviewed, pushed_after_review=pushed)
