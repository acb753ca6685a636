"""Every command's --help, rendered at 80 columns as a terminal shows it: no line is wider, none is
cut with an ellipsis, and no Python type placeholder (``<bool>``, ``<list[str]>``) or raw float
(``7776000.0``) shows through — for ``affidavit`` and ``kubectl affidavit``, new commands
included, because the test walks the command trees."""

from __future__ import annotations

import re

import pytest
import typer

from affidavit.cli import kubectl_plugin
from affidavit.cli import main as cli
from affidavit.cli.plain_help import walk

TYPE_PLACEHOLDER = re.compile(
    r"<(str|int|float|bool|path|dir|file|datetime|list\[[^>]*\]|\w+ range)>"
)
RAW_FLOAT = re.compile(r"(?<![\d.])\d+\.(0|\d{4,})(?![\d.])")

APPS = {"affidavit": cli.app, "kubectl affidavit": kubectl_plugin.app}
COMMANDS = [
    (prog, path) for prog, app in APPS.items() for path, _ in walk(typer.main.get_command(app))
]


@pytest.mark.parametrize(("prog", "path"), COMMANDS, ids=[" ".join([p, *c]) for p, c in COMMANDS])
def test_help_renders_cleanly_at_80_columns(
    prog: str, path: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert cli.run(APPS[prog], prog, [*path, "--help"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"Usage: {' '.join([prog, *path])}")
    section = ""
    for line in out.splitlines():
        assert len(line) <= 80, line
        assert not TYPE_PLACEHOLDER.search(line), line
        assert not RAW_FLOAT.search(line), line
        assert "…" not in line, line
        if line.endswith(":") and not line.startswith(" "):
            section = line
        elif section == "Commands:":
            assert not line.endswith("..."), line  # a command's summary cut short


def test_the_tree_walked_is_the_whole_cli() -> None:
    names = {" ".join([prog, *path]) for prog, path in COMMANDS}
    assert {"affidavit attest", "affidavit audit pack", "affidavit webhook serve",
            "kubectl affidavit why"} <= names  # fmt: skip
    assert len(names) > 25
