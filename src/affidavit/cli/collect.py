"""CLI: ``affidavit collect ...`` -- turn git history and review data into predicates.

The group is built here; each sub-command lives in its own module (``provenance`` below,
``review`` in ``collect_review``) so the two owners never edit the same function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from affidavit.cli import collect_review

collect_app = typer.Typer(
    help="Collect evidence (AI provenance, code review) as attestation predicates (JSON).",
    no_args_is_help=True,
)


@collect_app.command("provenance")
def provenance(
    head: Annotated[str, typer.Option("--head", help="Revision the image was built from.")],
    repo: Annotated[
        Path, typer.Option("--repo", help="Path of the git repository.", file_okay=False)
    ] = Path("."),
    base: Annotated[
        str | None,
        typer.Option("--base", help="Last revision already released; default: the whole history."),
    ] = None,
    tools: Annotated[
        Path | None,
        typer.Option("--tools", help="YAML registry of AI tool identities to add or override."),
    ] = None,
    tiers: Annotated[
        Path | None,
        typer.Option(
            "--tiers", help="Trust-tier map to use instead of .affidavit/tiers.yaml at --base."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON here, not to stdout.")
    ] = None,
) -> None:
    """Print the ai-provenance/v1 predicate for the commits in BASE..HEAD."""
    from affidavit.attestations.collect import collect_provenance, load_registry

    registry = load_registry(tools)
    predicate = collect_provenance(repo, base, head, tools=registry, tiers_file=tiers)
    text = predicate.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


collect_review.register(collect_app)


def register(root: typer.Typer) -> None:
    """Add the ``collect`` group to the root app."""
    root.add_typer(collect_app, name="collect")
