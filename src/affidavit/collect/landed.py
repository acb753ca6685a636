"""The commits a change request landed as, where its platform does not list them.

A policy admits an AI-involved commit only where the reviewed change request holds it
(``review.coversCommits``). GitHub's "Rebase and merge" lands a pull request as new commits (the
committer and so the id change) that its API never lists: only the last one is its
``merge_commit_sha``, the image's revision. Those copies are exactly the first-parent chain of
as many commits as the request has (merges aside) ending at that revision, in the request's
order, which nobody else can push into. So that chain, and only that chain, is compared with the
request's own commits pair by pair: each copy must make the same change as the commit it stands
for (``git patch-id --verbatim`` of the ``-U0`` diff: the files and the changed lines, whitespace
included, since it is code in Python or YAML; not the context, which a rebase onto a moved
branch changes). If every pair matches, the chain is recorded as the request's; otherwise none
of it (a squash merge lands as one commit, which the platform lists). A copy of one of the
request's commits elsewhere in the range (a commit the request itself reverted, cherry-picked
to the branch by hand) is never taken for the request's.

The request's own commits must be in the repository for their changes to be compared
(``git fetch origin pull/N/head`` on GitHub, ``merge-requests/N/head`` on GitLab); those that
are not are reported, and the copies are then not recognised (the policy refuses them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from affidavit.attestations.predicates.review import CodeReview
from affidavit.collect.git import resolve_commit, run_git

__all__ = ["Landed", "with_landed"]


@dataclass(frozen=True)
class Landed:
    """The request's rebased copies (oldest first), and the request's commits the repository
    does not have."""

    commits: tuple[str, ...]
    missing: tuple[str, ...]


def _parents(repo: Path, commits: Sequence[str]) -> dict[str, int]:
    """commit -> its number of parents, for the commits ``repo`` has (the others left out)."""
    if not commits:
        return {}
    listed = run_git(
        repo, "cat-file", "--batch-check=%(objectname) %(objecttype)",
        stdin="\n".join(commits).encode(),
    ).decode()  # fmt: skip
    present = [line.split()[0] for line in listed.splitlines() if line.endswith(" commit")]
    if not present:
        return {}
    out = run_git(repo, "log", "--no-walk=unsorted", "--format=%H %P", *present).decode()
    return {line.split()[0]: len(line.split()) - 1 for line in out.splitlines() if line}


def _patch_ids(repo: Path, commits: Sequence[str]) -> dict[str, str]:
    """commit -> the patch id of its ``-U0`` diff (an empty commit has none)."""
    shown = run_git(
        repo, "show", "--no-color", "-U0", "--format=commit %H", "--end-of-options", *commits
    )
    out = run_git(repo, "patch-id", "--verbatim", stdin=shown).decode()
    found: dict[str, str] = {}
    for line in out.splitlines():
        patch, _, commit = line.partition(" ")
        if commit:
            found[commit] = patch
    return found


def landed_commits(repo: Path, base: str, head: str, held: Sequence[str]) -> Landed:
    """The first-parent chain ending at ``head`` within ``base..head`` that copies the request's
    own commits (``held``, in the platform's order; merges and ``head`` aside) pair by pair."""
    base_sha = resolve_commit(repo, base)
    head_sha = resolve_commit(repo, head)
    wanted = list(dict.fromkeys(c.lower() for c in held))
    parents = _parents(repo, [*wanted, head_sha])
    missing = tuple(sorted(c for c in wanted if c not in parents))
    own = [c for c in wanted if parents.get(c) == 1 and c != head_sha]
    if missing or not own or head_sha in wanted[:-1] or parents.get(head_sha) != 1:
        # a request the repository lacks, one built at its own head, or landed by a merge
        return Landed((), missing)
    chain = (
        run_git(
            repo, "rev-list", "--first-parent", f"--max-count={len(own)}", f"{base_sha}..{head_sha}"
        )
        .decode()
        .split()[::-1]
    )
    if len(chain) != len(own) or chain[-1] != head_sha:
        return Landed((), missing)
    patches = _patch_ids(repo, [*own, *chain])
    if any(patches.get(copy) != patches.get(mine) for copy, mine in zip(chain, own, strict=True)):
        return Landed((), missing)  # not a rebase of the request (a squash, another history)
    return Landed(tuple(c for c in chain if c not in wanted), missing)


def with_landed(review: CodeReview, repo: Path, base: str) -> tuple[CodeReview, Landed]:
    """``review`` with its change request's rebased copies in ``base..`` its revision (in
    ``repo``) added to the commits it holds."""
    held = review.change_request.commits
    if held is None:  # nothing recorded as held: nothing can be a copy of it
        return review, Landed((), ())
    found = landed_commits(repo, base, review.source.revision, held)
    if not found.commits:
        return review, found
    cr = review.change_request.model_copy(update={"commits": [*held, *found.commits]})
    return review.model_copy(update={"change_request": cr}), found
