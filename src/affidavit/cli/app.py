"""The typer app behind ``affidavit``: built from the modules a command needs, and run with the
one mapping of errors to exit codes.

``cli/main.py`` decides which modules to register (and runs a plain ``verify`` without this
module: building a typer app cost more than the verification); everything that needs typer
itself lives here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import Annotated

import typer

from affidavit import __version__
from affidavit.cli.main import MODULES
from affidavit.cli.options import EXIT_CODES
from affidavit.errors import AffidavitError
from affidavit.printable import printable_lines


def build_app(modules: Iterable[str] = MODULES) -> typer.Typer:
    """The ``affidavit`` app with the commands of ``modules`` (all of them by default)."""
    app = typer.Typer(
        name="affidavit",
        help=(
            "Accountability for AI-assisted code: collect and attest who wrote a change (human or "
            "AI tool) and who reviewed it, enforce it at Kubernetes admission, explain and audit it."
        ),
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # click's plain help: wrapped at the terminal's width, never cut
        add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, ...)
        epilog=EXIT_CODES,
    )
    for name in modules:
        importlib.import_module(f"affidavit.cli.{name}").register(app)
    app.command("version")(version)
    app.callback()(_root)  # a callback keeps one registered command a sub-command
    return app


def version() -> None:
    """Print Affidavit's version."""
    typer.echo(__version__)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"affidavit {__version__}")
        raise typer.Exit()


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


def run(command: typer.Typer, prog_name: str, argv: Sequence[str] | None) -> int:
    """Run a typer app (``affidavit``, ``kubectl affidavit``) with the one error mapping."""
    from typer.main import get_command

    from affidavit.cli.plain_help import tidy

    try:
        tidy(get_command(command))(
            args=list(argv) if argv is not None else None, prog_name=prog_name
        )
    except AffidavitError as e:
        typer.echo(f"error: {printable_lines(e.diagnostic)}", err=True)
        return e.exit_code
    except SystemExit as e:  # click exits for --help, usage errors and normal completion
        if e.code is None:
            return 0
        return e.code if isinstance(e.code, int) else 2
    return 0
