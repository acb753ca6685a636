"""CLI: ``affidavit collect ...`` -- turn git history and review data into predicates.

The group is built here; each sub-command lives in its own module (``provenance`` below,
``review`` in ``collect_review``) so the two owners never edit the same function.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from affidavit.cli import collect_review
from affidavit.cli.options import ForceOpt, PseudonymKeyOpt, refuse_overwrite
from affidavit.cli.progress import progress
from affidavit.errors import UsageError

if TYPE_CHECKING:
    from affidavit.attestations.predicates.provenance import AiProvenance

collect_app = typer.Typer(
    help="Collect evidence (AI provenance, code review) as attestation predicates (JSON).",
    short_help="Collect AI provenance and code review as predicates.",
    no_args_is_help=True,
)


@collect_app.command(
    "provenance", short_help="Print the ai-provenance/v1 predicate for BASE..HEAD."
)
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
    force: ForceOpt = False,
    pseudonym_key: PseudonymKeyOpt = None,
) -> None:
    """Print the ai-provenance/v1 predicate for the commits in BASE..HEAD."""
    from affidavit.attestations.pseudonyms import load_key
    from affidavit.collect import collect_provenance, load_registry

    if output is not None:
        refuse_overwrite(force, output)
    key = load_key(pseudonym_key) if pseudonym_key is not None else None
    registry = load_registry(tools)
    with progress("reading history", "commits") as report:
        predicate = collect_provenance(
            repo, base, head, tools=registry, tiers_file=tiers, progress=report
        )
    if key is not None:
        from affidavit.collect.pseudonymize import pseudonymous_provenance

        predicate = pseudonymous_provenance(predicate, key, registry)
    text = predicate.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"
    if not predicate.changes:
        raise _empty_range(repo, base, head)
    _warn_if_too_large(predicate, text)
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(
                f"cannot write {output}: {e.strerror or e}",
                hint="create its directory first, or choose another --output",
            ) from e


def _warn_if_too_large(predicate: AiProvenance, indented: str) -> None:
    """Say so before writing a predicate whose signed attestation ``attest`` would refuse.

    The envelope carries the statement base64-encoded (4/3 of its compact JSON) plus the
    subject, signature and framing; the estimate errs on the large side by a few hundred bytes.
    The compact JSON is never longer than the indented text already made, so it is only
    serialised (a second pass over every change) when the indented text is over the limit.
    """
    from affidavit.attestations.dsse import MAX_ENVELOPE_BYTES

    def estimate(compact_bytes: int) -> int:
        return 4 * ((compact_bytes + 1024 + 2) // 3) + 1024

    if estimate(len(indented.encode())) <= MAX_ENVELOPE_BYTES:
        return
    size = estimate(len(predicate.model_dump_json(by_alias=True, exclude_none=True).encode()))
    if size <= MAX_ENVELOPE_BYTES:
        return
    commits = len(predicate.changes)
    mib = 1024 * 1024
    typer.echo(
        f"warning: these {commits} commits make a predicate whose signed attestation would be "
        f"about {size / mib:.1f} MiB, over the {MAX_ENVELOPE_BYTES // mib} MiB that "
        "`affidavit attest` and the verifiers accept; collect only what this release adds "
        "with --base LAST_RELEASED_REVISION",
        err=True,
    )


def _empty_range(repo: Path, base: str | None, head: str) -> UsageError:
    """No commit in BASE..HEAD: the same revision twice, or the two swapped, or nothing new."""
    import subprocess

    def rev(name: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", name + "^{commit}"],
                              capture_output=True, text=True, check=False)  # fmt: skip
        return done.stdout.strip()

    where = f"{base}..{head}" if base else head
    if base is not None and rev(base) == rev(head):
        return UsageError(
            f"the range {where} is empty: --base and --head are the same commit {rev(head)[:12]}",
            hint="--base is the last released revision, --head the one the image is built from",
        )
    if base is not None:
        ancestor = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", head,
                                   base], capture_output=True, check=False)  # fmt: skip
        if ancestor.returncode == 0:
            return UsageError(
                f"the range {where} is empty: --head {head} is an ancestor of --base {base}",
                hint="swap them: --base is the older, already released revision",
            )
    return UsageError(
        f"no commits in {where}: there is nothing to attest",
        hint="check --base and --head",
    )


collect_review.register(collect_app)


def register(root: typer.Typer) -> None:
    """Add the ``collect`` group to the root app."""
    root.add_typer(collect_app, name="collect")
