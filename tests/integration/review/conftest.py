"""Fixtures for the code-review collector tests: a real git repository, edited fixture copies."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from review_helpers import GitRepo


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def edited(tmp_path: Path) -> Callable[[Path, str, Callable[[Any], Any]], Path]:
    """Copy a fixture folder and rewrite one of its files: ``edited(folder, "pr.json", fn)``."""

    def make(folder: Path, name: str, change: Callable[[Any], Any]) -> Path:
        target = tmp_path / f"{folder.name}-{name}-edited"
        target.mkdir()
        for file in folder.iterdir():
            (target / file.name).write_bytes(file.read_bytes())
        data = json.loads((folder / name).read_text())
        (target / name).write_text(json.dumps(change(data)))
        return target

    return make
