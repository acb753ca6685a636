"""Fixtures for the provenance collector's tests: fresh real git repositories.

``make_repo(name)`` gives a fresh ``git init`` repository (see ``collect_gitrepo.Repo``) under the
test's tmp_path. Nothing is mocked: the collector reads these repositories with the real git.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from collect_gitrepo import Repo


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str], Repo]:
    """A factory of fresh repositories under the test's tmp_path."""

    def make(name: str = "repo") -> Repo:
        return Repo(tmp_path / name)

    return make
