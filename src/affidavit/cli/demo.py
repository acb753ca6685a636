"""CLI: ``affidavit demo``, the whole path end to end on this machine (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from affidavit.errors import AffidavitError


def demo(
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Keep everything here (default: a temporary directory)."),
    ] = None,
    region: Annotated[
        str, typer.Option("--region", help="The demo cluster's region.")
    ] = "eu-west-1",
) -> None:
    """Run the end-to-end demo: git history -> attestations -> registry -> admission -> ledger.

    Needs Debian's docker-registry and the Kubernetes binaries that `make demo` installs and
    builds (scripts/k8s-binaries).
    """
    from affidavit.demo.run import run_demo

    code = run_demo(typer.echo, workdir, region=region)
    if code != 0:
        raise AffidavitError("the demo did not behave as intended; see the output above")


def register(root: typer.Typer) -> None:
    """Add ``demo`` to the root app."""
    root.command("demo", short_help="Run the end-to-end demo (git to admission to ledger).")(demo)
