"""Tests ``affidavit verify``'s plain start (``cli/verify.py``): an argument list a pipeline
writes runs without typer, with exactly the output, errors and exit codes of the typer command;
anything else (help, a misspelt, repeated or malformed option, a missing image) is left to typer,
whose usage messages stay as they were. Against the real registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from attest_support import KeyPair, attest, closed_port, push_cosign_layer

from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.cli.app import build_app, run
from affidavit.cli.main import main
from affidavit.cli.verify import parse, plain_main

NewImage = Callable[..., ImageReference]


Outcome = tuple[int, str, str]  # exit code, stdout, stderr


def _both(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[Outcome, Outcome]:
    """(code, stdout, stderr) of the plain start and of the typer command for ``verify argv``."""
    plain = plain_main(argv)
    assert plain is not None, "the plain start left this argument list to typer"
    out = capsys.readouterr()
    typed = run(build_app(["attest"]), "affidavit", ["verify", *argv])
    again = capsys.readouterr()
    return (plain, out.out, out.err), (typed, again.out, again.err)


def test_the_plain_start_answers_as_the_typer_command(
    new_image: NewImage,
    client: RegistryClient,
    key: KeyPair,
    other_key: KeyPair,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = new_image(tag="plain")
    attest(client, image, key)
    pub, wrong = str(key.public_path), str(other_key.public_path)
    cases = [
        [str(image), "--key", pub],  # verified: exit 0
        [f"{image.name}:plain", f"--key={pub}", "--json"],  # a tag, --opt=VALUE, JSON
        ["--key", pub, str(image), "--type", "https://example.com/other/v1"],  # none: exit 4
        [str(image), "--key", wrong],  # rejected: exit 4 with the reason
        [str(image), "--key", str(tmp_path / "missing.pub")],  # no key file: exit 2
        [str(image), "--key", pub, "--keyless-identity", "ci@example.com"],  # exit 2
        [str(image), "--key", pub, "--keyless-source-ref", "refs/heads/main"],  # exit 2
        [f"127.0.0.1:{closed_port()}/app:v1", "--key", pub, "--max-bytes", "1000"],  # exit 5
    ]
    codes = []
    for argv in cases:
        plain, typed = _both(capsys, argv)
        assert plain == typed, argv
        codes.append(plain[0])
    assert codes == [0, 0, 4, 4, 2, 2, 2, 5]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["IMAGE", "--help"],
        ["IMAGE", "--kye", "k.pub"],  # misspelt
        ["IMAGE", "-k", "k.pub"],  # short options are typer's
        ["IMAGE", "OTHER", "--key", "k.pub"],  # an extra argument
        ["--key", "k.pub"],  # no image
        ["IMAGE", "--key"],  # an option without its value
        ["IMAGE", "--key", "--json"],  # a value that looks like an option
        ["IMAGE", "--key", ""],
        ["IMAGE", "--json=yes", "--key", "k.pub"],
        ["IMAGE", "--json", "--json", "--key", "k.pub"],
        ["IMAGE", "--key", "k.pub", "--keyless-issuer", "a", "--keyless-issuer", "b"],
        ["IMAGE", "--key", "k.pub", "--max-bytes", "1_000"],  # what int() reads, click's way
        ["IMAGE", "--key", "k.pub", "--max-bytes", "-1"],
        ["--", "IMAGE", "--key", "k.pub"],
    ],
)
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert parse(argv) is None


def test_a_usage_error_is_still_clicks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "registry.example/app:v1", "--kye", "k.pub"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "Usage: affidavit verify [OPTIONS] {IMAGE}",
        "Try 'affidavit verify --help' for help.",
        "",
        "Error: No such option: --kye (Possible options: --key, --type)",
    ]


def test_shell_completion_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_AFFIDAVIT_COMPLETE", "complete_bash")
    assert plain_main(["registry.example/app:v1", "--key", "k.pub"]) is None


def test_repeatable_options_and_paths_are_read_as_typer_reads_them() -> None:
    assert parse(
        ["--key", "a.pub", "IMAGE", "--key=b.pub", "--type", "t1", "--type", "t2",
         "--insecure-registry", "h:5000", "--registry-config", "c.json", "--ca-bundle", "ca.pem",
         "--trusted-root", "root.json", "--max-bytes", "0100", "--keyless-identity-regexp", "x",
         "--keyless-issuer", "https://issuer", "--keyless-source-ref", "refs/heads/main",
         "--keyless-build-trigger", "push", "--keyless-source-ref", "refs/heads/release"]
    ) == {
        "image": "IMAGE",
        "key": [Path("a.pub"), Path("b.pub")],
        "types": ["t1", "t2"],
        "insecure_registry": ["h:5000"],
        "registry_config": Path("c.json"),
        "ca_bundle": Path("ca.pem"),
        "trusted_root": Path("root.json"),
        "max_bytes": 100,
        "keyless_identity_regexp": "x",
        "keyless_issuer": "https://issuer",
        "runs": (["refs/heads/main", "refs/heads/release"], ["push"]),
    }  # fmt: skip


def test_a_layer_annotated_with_terminal_controls_cannot_forge_a_verified_line(
    new_image: NewImage,
    client: RegistryClient,
    key: KeyPair,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The type a rejected layer is listed under is its unsigned annotation: anyone who can push
    # writes it. Here it tries to erase its own line and print a "verified" one in its place.
    image = new_image(tag="forge")
    forged = "\x1b[2K\r  verified  https://affidavit.dev/attestations/code-review/v1  signer ci"
    push_cosign_layer(client, image, b"not an envelope", predicate_type=forged)
    argv = [str(image), "--key", str(key.public_path)]
    plain, typed = _both(capsys, argv)
    assert plain == typed
    code, out, _ = plain
    assert code == 4
    lines = out.splitlines()
    assert all(line.isprintable() for line in lines), lines
    assert not [line for line in lines if line.startswith("  verified")]
    (rejected,) = [line for line in lines if line.startswith("  rejected")]
    assert rejected.startswith(
        "  rejected  \\x1b[2K\\r  verified  https://affidavit.dev/attestations/code-review/v1"
    )
