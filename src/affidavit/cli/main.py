"""The ``affidavit`` command: one entry point, and the one place errors become exit codes.

Each sub-command lives in its own module and registers itself here. Any ``AffidavitError`` is
printed as its diagnostic (problem, then fix) with the error's exit code; a user mistake never
ends in a stack trace.

Running one command imports and registers only the module that defines it (``COMMAND_MODULES``):
typer inspects every registered command's signature when it builds the CLI, and importing and
inspecting all of them cost most of a one-attestation ``affidavit verify``. With no command
(``--help``, ``--version``, completion) or an unknown one ("did you mean"), the whole CLI is built.
``affidavit verify`` with a plain argument list starts without typer at all (``cli/verify.py``):
this module imports nothing of the CLI framework, which lives in ``cli/app.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from affidavit.cli.app import build_app, run

__all__ = ["COMMAND_MODULES", "MODULES", "build_app", "main", "run"]

#: The modules of ``affidavit.cli`` that register commands, in the order ``--help`` lists them.
MODULES = (
    "collect",
    "attest",
    "copy",
    "keygen",
    "pseudonym",
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
    "copy": "copy",
    "keygen": "keygen",
    "pseudonym": "pseudonym",
    "explain": "explain",
    "test": "test_cmd",
    "webhook": "webhook",
    "decisions": "webhook",
    "operator": "operator_cmd",
    "demo": "demo",
    "audit": "audit",
}


def __getattr__(name: str) -> Any:
    """``app`` (the whole CLI, built on first use), ``build_app`` and ``run`` (cli/app.py)."""
    if name not in ("app", "build_app", "run"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from affidavit.cli import app as typer_app

    value = typer_app.build_app() if name == "app" else getattr(typer_app, name)
    globals()[name] = value
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; map the error family to exit codes in this one place."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["verify"]:
        from affidavit.cli.verify import plain_main

        code = plain_main(args[1:])
        if code is not None:
            return code
    from affidavit.cli.app import build_app, run

    module = COMMAND_MODULES.get(args[0]) if args else None
    return run(build_app([module] if module else MODULES), "affidavit", args)


if __name__ == "__main__":
    sys.exit(main())
