"""CLI: ``affidavit collect review`` (placeholder until its owner lands it).

Kept apart from ``collect.py`` so the review sub-command's owner edits only this module.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``review`` sub-command to the ``collect`` group."""
