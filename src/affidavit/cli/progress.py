"""Progress on long work, drawn on stderr only for a person at a terminal.

``collect provenance`` over tens of thousands of commits and the audit over a million decisions
take long enough that a silent terminal looks hung. A pipeline's log is not a terminal, and
there a redrawn bar is noise, so nothing is drawn unless stderr is a TTY (git's rule for its own
progress); ``AFFIDAVIT_NO_PROGRESS=1`` turns it off at a terminal too. The bar is transient: it
disappears when the work ends, leaving the command's own output. rich (typer's dependency) is
imported only when a bar is drawn.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: ``report(done, total)``: ``total`` None while it is not known.
Report = Callable[[int, int | None], None]


def _quiet(done: int, total: int | None) -> None:
    """Nothing to draw: stderr is not a terminal."""


def wanted() -> bool:
    """Draw progress: stderr is a terminal and AFFIDAVIT_NO_PROGRESS is not set."""
    return sys.stderr.isatty() and not os.environ.get("AFFIDAVIT_NO_PROGRESS")


@contextmanager
def progress(description: str, unit: str) -> Iterator[Report]:
    """A ``report(done, total)`` for the work inside the block, drawn as a bar when wanted."""
    if not wanted():
        yield _quiet
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield report
