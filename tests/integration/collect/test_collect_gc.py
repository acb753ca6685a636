"""The collector pauses Python's cyclic garbage collector while it builds a predicate, and always
restores it: full collections re-scanning every commit object were a third of its CPU on long
ranges, and a caller (a long-running process) must get its collector state back, even on error.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from collect_gitrepo import Repo

from affidavit.collect import collect_provenance
from affidavit.errors import CollectError


def test_gc_paused_while_collecting_and_restored(make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("repo")
    repo.commit("one", {"a.txt": "a\n"})
    seen: list[bool] = []
    assert gc.isenabled()
    collect_provenance(
        repo.path, None, "HEAD", progress=lambda done, total: seen.append(gc.isenabled())
    )
    assert seen and not any(seen)
    assert gc.isenabled()


def test_gc_restored_after_an_error_and_left_off_when_it_was_off(
    make_repo: Callable[[str], Repo],
) -> None:
    repo = make_repo("repo")
    repo.commit("one", {"a.txt": "a\n"})
    with pytest.raises(CollectError):
        collect_provenance(repo.path, None, "no-such-branch")
    assert gc.isenabled()
    gc.disable()
    try:
        collect_provenance(repo.path, None, "HEAD")
        assert not gc.isenabled()
    finally:
        gc.enable()
