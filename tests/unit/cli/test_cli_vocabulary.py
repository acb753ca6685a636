"""One vocabulary across the CLI, asserted over the whole command tree so it cannot drift: a new
command or option that breaks it fails here.

- the image a command is about is its positional IMAGE (``--image`` is only ``decisions list``'s
  filter, and ``attest``'s hidden deprecated spelling);
- ``--key`` names the trusted public key wherever attestations are verified, repeatable;
- ``--insecure-registry HOST`` is a repeatable value wherever a registry is contacted;
- every command that writes a file takes ``-o/--output`` and ``--force``;
- ``--json`` on ``copy``, ``verify``, ``trace``, ``explain`` and ``decisions list`` (and the
  plugin's ``explain``);
- deprecated spellings are hidden from help.
"""

from __future__ import annotations

from typing import Any

import typer

from affidavit.cli import kubectl_plugin
from affidavit.cli import main as cli
from affidavit.cli.plain_help import walk

TREES = {"affidavit": cli.app, "kubectl affidavit": kubectl_plugin.app}
COMMANDS: dict[str, Any] = {
    " ".join([prog, *path]): command
    for prog, app in TREES.items()
    for path, command in walk(typer.main.get_command(app))
}
#: The commands that write files, and every one of them.
WRITERS = {
    "affidavit collect provenance",
    "affidavit collect review",
    "affidavit keygen",
    "affidavit pseudonym key",
    "affidavit audit report",
    "affidavit audit pack",
}
#: The commands that contact an OCI registry.
REGISTRY_USERS = {
    "affidavit attest",
    "affidavit copy",
    "affidavit verify",
    "affidavit trace",
    "affidavit audit report",
    "affidavit audit pack",
    "affidavit webhook serve",
    "affidavit operator run",  # its re-check of running workloads
}
#: The commands about one image.
IMAGE_COMMANDS = {
    "affidavit attest",
    "affidavit verify",
    "affidavit trace",
    "affidavit explain",
    "kubectl affidavit policy",
}
VERIFIERS = {
    "affidavit verify",
    "affidavit trace",
    "affidavit audit report",
    "affidavit audit pack",
}
JSON_COMMANDS = {
    "affidavit copy",
    "affidavit verify",
    "affidavit trace",
    "affidavit explain",
    "affidavit decisions list",
    "kubectl affidavit explain",
}
DEPRECATED = {
    ("affidavit attest", "--image"),
    ("affidavit keygen", "--output-prefix"),
    ("affidavit audit report", "--public-key"),
    ("affidavit audit pack", "--public-key"),
}


def options(name: str) -> dict[str, Any]:
    """The options of a command by each of their spellings."""
    found: dict[str, Any] = {}
    for param in COMMANDS[name].params:
        if param.param_type_name == "option":
            for spelling in [*param.opts, *param.secondary_opts]:
                found[spelling] = param
    return found


def having(spelling: str, *, visible: bool = True) -> set[str]:
    return {
        name
        for name in COMMANDS
        if spelling in options(name) and not (visible and options(name)[spelling].hidden)
    }


def test_every_command_that_writes_a_file_has_o_output_and_force() -> None:
    assert having("--output") == WRITERS
    for name in WRITERS:
        opts = options(name)
        assert opts["--output"] is opts["-o"], name
        assert opts["--force"].is_flag, name


def test_insecure_registry_is_a_repeatable_host_wherever_a_registry_is_contacted() -> None:
    assert having("--insecure-registry") == REGISTRY_USERS
    for name in REGISTRY_USERS:
        option = options(name)["--insecure-registry"]
        assert (option.multiple, option.is_flag, option.metavar) == (True, False, "HOST"), name


def test_key_names_the_trusted_public_key_wherever_attestations_are_verified() -> None:
    for name in VERIFIERS:
        option = options(name)["--key"]
        assert option.multiple, name
        assert "public key" in option.help, name
    assert having("--public-key") == set()  # the old audit spelling is hidden


def test_the_image_is_positional() -> None:
    for name in IMAGE_COMMANDS:
        arguments = [p.name for p in COMMANDS[name].params if p.param_type_name == "argument"]
        assert arguments == ["image"], name
    assert having("--image") == {"affidavit decisions list"}  # a filter, not the subject


def test_json_where_people_script_the_answer() -> None:
    assert having("--json") >= JSON_COMMANDS
    for name in having("--json"):
        assert options(name)["--json"].is_flag, name


def test_deprecated_spellings_still_parse_but_are_hidden() -> None:
    for name, spelling in DEPRECATED:
        assert options(name)[spelling].hidden, (name, spelling)
