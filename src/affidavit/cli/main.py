"""The ``affidavit`` command: one entry point, and the one place errors become exit codes.

Each sub-command lives in its own module and registers itself here. Any ``AffidavitError`` is
printed as its diagnostic (problem, then fix) with the error's exit code; a user mistake never
ends in a stack trace.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from affidavit import __version__
from affidavit.cli import (
    attest,
    audit,
    collect,
    demo,
    explain,
    keygen,
    operator_cmd,
    test_cmd,
    webhook,
)
from affidavit.cli.options import EXIT_CODES
from affidavit.errors import AffidavitError

app = typer.Typer(
    name="affidavit",
    help=(
        "Accountability for AI-assisted code: collect and attest who wrote a change (human or "
        "AI tool) and who reviewed it, enforce it at Kubernetes admission, explain and audit it."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: wrapped at the terminal's width, never cut
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    epilog=EXIT_CODES,
)

for module in (collect, attest, keygen, explain, test_cmd, webhook, operator_cmd, demo, audit):
    module.register(app)


@app.command("version")
def version() -> None:
    """Print Affidavit's version."""
    typer.echo(__version__)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"affidavit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print Affidavit's version and exit.",
        ),
    ] = None,
) -> None:
    """Accountability for AI-assisted code."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; map the error family to exit codes in this one place."""
    return run(app, "affidavit", argv)


def run(command: typer.Typer, prog_name: str, argv: Sequence[str] | None) -> int:
    """Run a typer app (``affidavit``, ``kubectl affidavit``) with the one error mapping."""
    from typer.main import get_command

    from affidavit.cli.plain_help import tidy

    try:
        tidy(get_command(command))(
            args=list(argv) if argv is not None else None, prog_name=prog_name
        )
    except AffidavitError as e:
        typer.echo(f"error: {e.diagnostic}", err=True)
        return e.exit_code
    except SystemExit as e:  # click exits for --help, usage errors and normal completion
        if e.code is None:
            return 0
        return e.code if isinstance(e.code, int) else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
