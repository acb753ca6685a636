"""The ``affidavit`` command: one entry point, and the one place errors become exit codes.

Each sub-command lives in its own module and registers itself here. Any ``AffidavitError`` is
printed as its diagnostic (problem, then fix) with the error's exit code; a user mistake never
ends in a stack trace.

Running one command imports and registers only the module that defines it (``COMMAND_MODULES``):
typer inspects every registered command's signature when it builds the CLI, and importing and
inspecting all of them cost most of a one-attestation ``affidavit verify``. With no command
(``--help``, ``--version``, completion) or an unknown one ("did you mean"), the whole CLI is built.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated

import typer

from affidavit import __version__
from affidavit.cli.options import EXIT_CODES
from affidavit.errors import AffidavitError

#: The modules of ``affidavit.cli`` that register commands, in the order ``--help`` lists them.
MODULES = (
    "collect",
    "attest",
    "keygen",
    "explain",
    "test_cmd",
    "webhook",
    "operator_cmd",
    "demo",
    "audit",
)
#: Each top-level command and the module that registers it (a test checks it against MODULES).
COMMAND_MODULES = {
    "collect": "collect",
    "attest": "attest",
    "verify": "attest",
    "trace": "attest",
    "keygen": "keygen",
    "explain": "explain",
    "test": "test_cmd",
    "webhook": "webhook",
    "decisions": "webhook",
    "operator": "operator_cmd",
    "demo": "demo",
    "audit": "audit",
}


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


def __getattr__(name: str) -> typer.Typer:
    """``app``: the whole CLI, built on first use (``from affidavit.cli.main import app``)."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = globals()["app"] = build_app()
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; map the error family to exit codes in this one place."""
    args = list(sys.argv[1:] if argv is None else argv)
    module = COMMAND_MODULES.get(args[0]) if args else None
    return run(build_app([module] if module else MODULES), "affidavit", args)


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
