"""A git repository made by a test: real ``git init``, real commits, deterministic dates.

Imported by the collect tests and their conftest (a unique module name, so it never collides with
another folder's helpers).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

HUMAN = ("Alice Human", "alice@example.com")


class Repo:
    """A git repository made by a test."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tick = 0
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", HUMAN[0])
        self.git("config", "user.email", HUMAN[1])
        self.git("config", "commit.gpgsign", "false")

    def _env(self, author: tuple[str, str], committer: tuple[str, str]) -> dict[str, str]:
        self._tick += 1
        date = f"2026-01-01T00:{self._tick // 60:02d}:{self._tick % 60:02d}+00:00"
        return {
            **os.environ,
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": committer[0],
            "GIT_COMMITTER_EMAIL": committer[1],
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
        }

    def git(
        self, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
    ) -> str:
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=dict(env) if env is not None else None,
            input=stdin,
            capture_output=True,
            check=True,
        )
        return proc.stdout.decode("utf-8", "replace").strip()

    def write(self, files: Mapping[str, str | bytes]) -> None:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
            self.git("add", "--", name)

    def commit(
        self,
        message: str | bytes,
        files: Mapping[str, str | bytes] | None = None,
        *,
        author: tuple[str, str] = HUMAN,
        committer: tuple[str, str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> str:
        """Commit ``files`` with ``message``; returns the new commit's sha."""
        if files:
            self.write(files)
        raw = message.encode("utf-8") if isinstance(message, str) else message
        self.git(
            *extra,
            "commit",
            "-q",
            "--allow-empty",
            "--cleanup=verbatim",
            "-F",
            "-",
            env=self._env(author, committer or author),
            stdin=raw,
        )
        return self.head()

    def merge(self, branch: str, message: str, *, committer: tuple[str, str] = HUMAN) -> str:
        self.git(
            "merge", "-q", "--no-ff", "-m", message, branch, env=self._env(committer, committer)
        )
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")
