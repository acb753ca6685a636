"""CLI: ``affidavit collect review``, the code-review/v1 predicate from one of three sources.

Kept apart from the rest of ``collect`` so the review collector's options (three mutually
exclusive sources) do not crowd the provenance command; ``cli/collect.py`` calls ``register``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from affidavit.cli.options import ForceOpt, PseudonymKeyOpt, refuse_overwrite
from affidavit.errors import UsageError

if TYPE_CHECKING:  # the collectors are imported by the command that runs them
    from affidavit.attestations.predicates.review import CodeReview

_SOURCES = (
    "--github-pr PR.json --github-reviews REVIEWS.json --github-commits COMMITS.json, "
    "--gitlab-mr MR.json --gitlab-approvals APPROVALS.json [--gitlab-versions VERSIONS.json "
    "--gitlab-notes NOTES.json], "
    "or --trailers --repo PATH --base A --head B"
)


def _require(given: Mapping[str, object], mode: str) -> None:
    absent = [flag for flag, value in given.items() if value is None]
    if absent:
        raise UsageError(
            f"collect review {mode} needs {', '.join(absent)}", hint=f"give one source: {_SOURCES}"
        )


def review(
    github_pr: Annotated[
        Path | None, typer.Option(help="JSON of GET /repos/{o}/{r}/pulls/{n}.")
    ] = None,
    github_reviews: Annotated[
        Path | None, typer.Option(help="JSON of GET /repos/{o}/{r}/pulls/{n}/reviews.")
    ] = None,
    github_commits: Annotated[
        Path | None, typer.Option(help="JSON of GET /repos/{o}/{r}/pulls/{n}/commits.")
    ] = None,
    github_review_comments: Annotated[
        Path | None,
        typer.Option(
            help="Optional JSON of GET /repos/{o}/{r}/pulls/{n}/comments (per-review counts)."
        ),
    ] = None,
    gitlab_mr: Annotated[
        Path | None, typer.Option(help="JSON of GET /projects/:id/merge_requests/:iid.")
    ] = None,
    gitlab_approvals: Annotated[
        Path | None, typer.Option(help="JSON of GET /projects/:id/merge_requests/:iid/approvals.")
    ] = None,
    gitlab_commits: Annotated[
        Path | None,
        typer.Option(help="Optional JSON of GET /projects/:id/merge_requests/:iid/commits."),
    ] = None,
    gitlab_versions: Annotated[
        Path | None,
        typer.Option(
            help="JSON of GET /projects/:id/merge_requests/:iid/versions (every page): with "
            "--gitlab-notes, an approval given before a later push counts for the revision it "
            "approved, not the final one."
        ),
    ] = None,
    gitlab_notes: Annotated[
        Path | None,
        typer.Option(
            help="JSON of GET /projects/:id/merge_requests/:iid/notes (every page): when each "
            "approval was given. Needed with --gitlab-versions once the MR was pushed to again."
        ),
    ] = None,
    trailers: Annotated[
        bool, typer.Option("--trailers", help="Read Reviewed-by/Acked-by/Approved-by trailers.")
    ] = False,
    repo: Annotated[
        Path, typer.Option(help="Git repository for --trailers, and for --base with GitHub/GitLab.")
    ] = Path("."),
    base: Annotated[
        str | None,
        typer.Option(
            help="First excluded commit. --trailers reads base..head. With GitHub or GitLab: "
            "the commits a rebase merge lands in base..head (the first-parent chain ending at "
            "--head, each making the same change, by git patch-id, as the request's commit it "
            "stands for) are recorded as the request's too (its commits must be in --repo: "
            "git fetch origin pull/N/head)."
        ),
    ] = None,
    head: Annotated[
        str | None,
        typer.Option(help="Revision the image was built from (default: the PR/MR head)."),
    ] = None,
    repository: Annotated[
        str | None, typer.Option(help="Repository URL to record (default: from the input).")
    ] = None,
    tools: Annotated[
        Path | None,
        typer.Option(help="YAML registry of AI tools whose identities are never independent."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the predicate here instead of stdout."),
    ] = None,
    force: ForceOpt = False,
    pseudonym_key: PseudonymKeyOpt = None,
) -> None:
    """Print the code-review/v1 predicate for a pull request, merge request or commit range."""
    github = {
        "--github-pr": github_pr,
        "--github-reviews": github_reviews,
        "--github-commits": github_commits,
    }
    gitlab = {"--gitlab-mr": gitlab_mr, "--gitlab-approvals": gitlab_approvals}
    modes = [
        name
        for name, used in (
            ("GitHub", any(v is not None for v in github.values()) or github_review_comments),
            (
                "GitLab",
                any(v is not None for v in gitlab.values())
                or any(v is not None for v in (gitlab_commits, gitlab_versions, gitlab_notes)),
            ),
            ("--trailers", trailers),
        )
        if used
    ]
    if output is not None:
        refuse_overwrite(force, output)
    if len(modes) != 1:
        found = " and ".join(modes) if modes else "no source"
        raise UsageError(f"collect review needs exactly one source, got {found}", hint=_SOURCES)
    from affidavit.attestations.pseudonyms import load_key
    from affidavit.collect import (
        collect_github_review,
        collect_gitlab_review,
        collect_trailer_review,
        load_agent_identities,
    )

    key = load_key(pseudonym_key) if pseudonym_key is not None else None
    agents = load_agent_identities(tools)
    predicate: CodeReview
    if modes[0] == "GitHub":
        _require(github, "from GitHub")
        assert github_pr and github_reviews and github_commits
        predicate = collect_github_review(
            github_pr,
            github_reviews,
            github_commits,
            comments_path=github_review_comments,
            head=head,
            repository=repository,
            agents=agents,
        )
    elif modes[0] == "GitLab":
        _require(gitlab, "from GitLab")
        assert gitlab_mr and gitlab_approvals
        predicate = collect_gitlab_review(
            gitlab_mr,
            gitlab_approvals,
            commits_path=gitlab_commits,
            versions_path=gitlab_versions,
            notes_path=gitlab_notes,
            head=head,
            repository=repository,
            agents=agents,
        )
    else:
        _require({"--base": base, "--head": head}, "--trailers")
        assert base and head
        predicate = collect_trailer_review(repo, base, head, repository=repository, agents=agents)
    if base is not None and modes[0] != "--trailers":
        predicate = _with_landed(predicate, repo, base)
    if key is not None:
        from affidavit.collect.pseudonymize import pseudonymous_review

        predicate = pseudonymous_review(predicate, key)
    text = json.dumps(predicate.to_wire(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write --output {output}: {e.strerror or e}") from e


def _with_landed(predicate: CodeReview, repo: Path, base: str) -> CodeReview:
    """Add the range's copies of the request's commits; warn of those ``repo`` lacks."""
    from affidavit.collect.landed import with_landed

    predicate, landed = with_landed(predicate, repo, base)
    if landed.missing:
        shown = ", ".join(c[:12] for c in landed.missing[:5])
        more = f" +{len(landed.missing) - 5} more" if len(landed.missing) > 5 else ""
        typer.echo(
            f"warning: {len(landed.missing)} of the change request's commits are not in {repo} "
            f"({shown}{more}): a rebased copy of them is not recorded as the request's, and a "
            "policy refuses it as review.coversCommits; fetch them first (GitHub: git fetch "
            "origin pull/N/head, GitLab: git fetch origin merge-requests/N/head)",
            err=True,
        )
    return predicate


def register(app: typer.Typer) -> None:
    """Add the ``review`` command to the ``collect`` group ``app``."""
    app.command("review", short_help="Print the code-review/v1 predicate of a change request.")(
        review
    )
