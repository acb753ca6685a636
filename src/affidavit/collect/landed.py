"""The commits a change request landed as, where its platform does not list them.

A policy admits an AI-involved commit only where the reviewed change request holds it
(``review.coversCommits``). GitHub's "Rebase and merge" lands a pull request as new commits (the
committer and so the id change) that its API never lists: only the last one is its
``merge_commit_sha``. A rebased commit makes the same change as the commit it copies, which
``git patch-id --verbatim`` tells: a digest of the diff (its files, context and changed
lines) blind to line numbers only, not to whitespace, which is code in Python or YAML. So the
commits of the image's range that make the same change as one of the request's own are the
request's, landed; an unreviewed commit pushed beside it makes another change and stays out.

The request's own commits must be in the repository for their changes to be compared
(``git fetch origin pull/N/head`` on GitHub, ``merge-requests/N/head`` on GitLab); those that
are not are reported, and their copies are then not recognised (the policy refuses them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from affidavit.attestations.predicates.review import CodeReview
from affidavit.collect.git import resolve_commit, run_git

__all__ = ["Landed", "with_landed"]


@dataclass(frozen=True)
class Landed:
    """The range's commits that copy one of the request's (in the range's order, oldest
    first), and the request's commits the repository does not have."""

    commits: tuple[str, ...]
    missing: tuple[str, ...]


def _patch_ids(repo: Path, listing: bytes) -> dict[str, str]:
    """commit -> patch id, from ``git log -p``/``git show`` output (merges and empty commits
    have none)."""
    out = run_git(repo, "patch-id", "--verbatim", stdin=listing).decode()
    found: dict[str, str] = {}
    for line in out.splitlines():
        patch, _, commit = line.partition(" ")
        if commit:
            found[commit] = patch
    return found


def _present(repo: Path, commits: Iterable[str]) -> tuple[list[str], list[str]]:
    """The commits ``repo`` has, and those it has not."""
    wanted = list(dict.fromkeys(commits))
    if not wanted:
        return [], []
    out = run_git(
        repo,
        "cat-file",
        "--batch-check=%(objectname) %(objecttype)",
        stdin="\n".join(wanted).encode(),
    ).decode()
    have = {line.split()[0] for line in out.splitlines() if line.endswith(" commit")}
    return [c for c in wanted if c in have], [c for c in wanted if c not in have]


def _authored(repo: Path, *args: str) -> dict[str, tuple[str, str]]:
    """commit -> (author time, author email) of the commits ``git log ARGS`` lists."""
    out = run_git(repo, "log", "--format=%H %at %ae", *args).decode("utf-8", "replace")
    found: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        commit, _, rest = line.partition(" ")
        at, _, email = rest.partition(" ")
        found[commit] = (at, email.lower())
    return found


def landed_commits(repo: Path, base: str, head: str, held: Iterable[str]) -> Landed:
    """The commits of ``base..head`` in ``repo``, not in ``held``, that make the same change as
    a commit of ``held``.

    Only the range's commits with the author and author time of one of ``held`` are compared
    (a rebase keeps both): a range of thousands of commits is not read as patches."""
    base_sha = resolve_commit(repo, base)
    head_sha = resolve_commit(repo, head)
    held_set = {c.lower() for c in held}
    present, missing = _present(repo, held_set)
    if not present:
        return Landed((), tuple(sorted(missing)))
    reviewed_by = _authored(repo, "--no-walk=unsorted", "--end-of-options", *present)
    ranged = _authored(repo, "--reverse", f"{base_sha}..{head_sha}")
    wanted = set(reviewed_by.values())
    candidates = [c for c, who in ranged.items() if who in wanted and c not in held_set]
    if not candidates:
        return Landed((), tuple(sorted(missing)))
    patches = _patch_ids(repo, _shown(repo, [*present, *candidates]))
    reviewed = {patches[c] for c in present if c in patches}
    copies = tuple(c for c in candidates if patches.get(c) in reviewed)
    return Landed(copies, tuple(sorted(missing)))


def _shown(repo: Path, commits: list[str]) -> bytes:
    """The commits' patches, each under a ``commit <id>`` line (what ``git patch-id`` reads)."""
    return run_git(repo, "show", "--no-color", "--format=commit %H", "--end-of-options", *commits)


def with_landed(review: CodeReview, repo: Path, base: str) -> tuple[CodeReview, Landed]:
    """``review`` with the commits of ``base..`` its revision (in ``repo``) that copy one of its
    change request's commits added to those it holds."""
    held = review.change_request.commits
    if held is None:  # nothing recorded as held: nothing can be a copy of it
        return review, Landed((), ())
    found = landed_commits(repo, base, review.source.revision, held)
    if not found.commits:
        return review, found
    cr = review.change_request.model_copy(update={"commits": [*held, *found.commits]})
    return review.model_copy(update={"change_request": cr}), found
