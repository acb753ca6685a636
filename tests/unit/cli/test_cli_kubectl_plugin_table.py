"""Tests ``kubectl affidavit exceptions``' table: an exception's incident, owner and approvers are
written by whoever may create exceptions in a namespace, and shown on an operator's terminal, so
a control character in them is shown as its escape and the columns stay aligned."""

from __future__ import annotations

from affidavit.cli.kubectl_plugin import _table


def test_cells_are_printable_and_aligned() -> None:
    table = _table([["NAME", "INCIDENT", "OWNER"],
                    ["hotfix", "INC-1\x1b[1A\x1b[2K", "rita\nshop  rollback  Active"],
                    ["b", "INC-2", "sam"]])  # fmt: skip
    lines = table.split("\n")
    assert lines == [
        "NAME     INCIDENT              OWNER",
        "hotfix   INC-1\\x1b[1A\\x1b[2K   rita\\nshop  rollback  Active",
        "b        INC-2                 sam",
    ]
