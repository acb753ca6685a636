"""``affidavit keygen``, ``attest`` and ``verify`` through the real CLI entry point.

Exit codes (0, 2 usage/input, 4 verification, 5 registry) and the exact messages a pipeline
author sees, against the real registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attest_support import PREDICATE_TYPE, closed_port

from affidavit.attestations.registry import ImageReference
from affidavit.cli.main import main

NewImage = Callable[..., ImageReference]


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["keygen", "--kind", "ecdsa-p256", "--output", str(tmp_path / "ci")]) == 0
    assert main(["keygen", "--kind", "ed25519", "--output", str(tmp_path / "rogue")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [
        f"private key {tmp_path / 'ci.key'}",
        f"public key  {tmp_path / 'ci.pub'}",
    ]
    assert (tmp_path / "ci.key").stat().st_mode & 0o777 == 0o600
    return tmp_path


@pytest.fixture
def predicate(tmp_path: Path) -> Path:
    path = tmp_path / "predicate.json"
    path.write_text(json.dumps({"anything": ["goes", 1]}))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_attest_then_verify(
    new_image: NewImage, keys: Path, predicate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = new_image()
    code, out, _ = run(
        capsys,
        "attest",
        str(image),
        "--predicate",
        str(predicate),
        "--type",
        "https://example.com/custom/v1",
        "--key",
        str(keys / "ci.key"),
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"attested {image} (https://example.com/custom/v1)"
    assert lines[1].startswith("  envelope   sha256:")
    assert lines[2].startswith(f"  cosign tag {image.name}:sha256-")
    assert (
        lines[4] == f"  tag index  {image.name}:{image.digest and image.digest.replace(':', '-')}"
    )
    envelope = lines[1].split()[-1]

    code, out, err = run(capsys, "verify", str(image), "--key", str(keys / "ci.pub"))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"image {image}",
        f"  verified  https://example.com/custom/v1  signer {keys / 'ci.pub'}  (cosign-tag "
        f"{envelope})",
        "1 verified, 0 rejected",
    ]


def test_verify_a_tag_prints_its_digest_and_json(
    new_image: NewImage, keys: Path, predicate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = new_image(tag="stable")
    key = str(keys / "ci.key")
    for kind in ("https://example.com/a", "https://example.com/b"):
        argv = ["attest", str(image), "--predicate", str(predicate), "--type", kind]
        assert main([*argv, "--key", key]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "verify", f"{image.name}:stable", "--key", str(keys / "ci.pub"))
    assert out.splitlines()[0] == f"{image.name}:stable resolved to {image.digest}"
    code, out, _ = run(
        capsys, "verify", f"{image.name}:stable", "--key", str(keys / "ci.pub"), "--json"
    )
    assert code == 0
    document: dict[str, Any] = json.loads(out)
    assert document["image"] == str(image)
    assert document["digest"] == image.digest
    assert document["rejected"] == []
    assert sorted(v["predicateType"] for v in document["verified"]) == [
        "https://example.com/a",
        "https://example.com/b",
    ]
    assert {v["signer"] for v in document["verified"]} == {str(keys / "ci.pub")}
    code, out, _ = run(
        capsys,
        "verify",
        str(image),
        "--key",
        str(keys / "ci.pub"),
        "--json",
        "--type",
        "https://example.com/b",
    )
    assert [v["predicateType"] for v in json.loads(out)["verified"]] == ["https://example.com/b"]


def test_known_predicate_types_are_validated(
    new_image: NewImage, keys: Path, predicate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = new_image()
    code, _, err = run(
        capsys,
        "attest",
        str(image),
        "--predicate",
        str(predicate),
        "--type",
        PREDICATE_TYPE,
        "--key",
        str(keys / "ci.key"),
    )
    assert code == 2
    assert err.startswith(f"error: predicate file {predicate} is not a valid {PREDICATE_TYPE} ")


def test_verify_with_the_wrong_key_exits_4(
    new_image: NewImage, keys: Path, predicate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = new_image()
    argv = ["attest", str(image), "--predicate", str(predicate)]
    assert main([*argv, "--type", "https://example.com/t", "--key", str(keys / "rogue.key")]) == 0
    capsys.readouterr()
    code, _, err = run(capsys, "verify", str(image), "--key", str(keys / "ci.pub"))
    assert code == 4
    assert err == (
        f"error: no attestation for {image} verified: no signature verified with the trusted "
        f"keys ({keys / 'ci.pub'}): the payload was changed after signing or was signed by "
        "another key\n"
    )


def test_verify_with_nothing_attached_exits_4(
    new_image: NewImage, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = new_image()
    code, out, err = run(capsys, "verify", str(image), "--key", str(keys / "ci.pub"))
    assert code == 4
    assert out.splitlines()[-1] == "0 verified, 0 rejected"
    assert err == (
        f"error: no attestations found for {image}\n"
        "  hint: attach one with `affidavit attest IMAGE@DIGEST --predicate FILE "
        "--type URI --key KEY`\n"
    )


def test_registry_unreachable_exits_5(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = f"127.0.0.1:{closed_port()}"
    code, _, err = run(
        capsys, "verify", f"{host}/app@sha256:{'c' * 64}", "--key", str(keys / "ci.pub")
    )
    assert code == 5
    assert err == (
        f"error: registry {host} is unreachable: connection refused; check the address and "
        "that the registry is running\n"
    )


def test_image_missing_exits_5(
    registry: Any, keys: Path, predicate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = f"{registry.host}/affidavit-test/absent@sha256:{'d' * 64}"
    for argv in (
        ["verify", image, "--key", str(keys / "ci.pub")],
        [
            "attest",
            image,
            "--predicate",
            str(predicate),
            "--type",
            "https://t",
            "--key",
            str(keys / "ci.key"),
        ],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 5
        assert err == (
            f"error: image {image} not found in the registry\n"
            "  hint: check the repository and digest, or push the image first\n"
        )


def test_attest_refuses_a_tag_and_bad_input(
    new_image: NewImage, keys: Path, predicate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = new_image()
    key = ["--key", str(keys / "ci.key")]
    code, _, err = run(
        capsys,
        "attest",
        f"{image.name}:v1",
        "--predicate",
        str(predicate),
        "--type",
        "https://t",
        *key,
    )
    assert code == 2
    assert err.startswith(f"error: {image.name}:v1 names a tag; attestations are bound")
    predicate.write_text("[1")
    code, _, err = run(
        capsys,
        "attest",
        str(image),
        "--predicate",
        str(predicate),
        "--type",
        "https://t",
        *key,
    )
    assert code == 2
    assert err == (
        f"error: predicate file {predicate} is not valid JSON: Expecting ',' delimiter: line 1 "
        "column 3 (char 2)\n"
    )
    code, _, err = run(capsys, "verify", "Acme/App", "--key", str(keys / "ci.pub"))
    assert code == 2
    assert err.startswith(
        "error: image reference 'Acme/App' has an invalid repository 'Acme/App' (lowercase letters, "
        "digits and separators . _ - /)"
    )
    code, _, err = run(
        capsys,
        "attest",
        str(image),
        "--predicate",
        str(predicate),
        "--type",
        "https://t",
    )
    assert (code, err) == (2, "error: give exactly one of --key KEY and --sigstore\n")


def test_attest_still_takes_the_image_as_the_deprecated_option(
    new_image: NewImage, keys: Path, predicate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pipelines written for `attest --image IMAGE` keep working, with a warning on stderr."""
    image = new_image()
    argv = ["attest", "--image", str(image), "--predicate", str(predicate), "--type",
            "https://example.com/custom/v1", "--key", str(keys / "ci.key")]  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, (
        "warning: --image IMAGE is deprecated and will be removed; pass the image as the first "
        "argument: affidavit attest IMAGE\n"
    ))  # fmt: skip
    assert out.splitlines()[0] == f"attested {image} (https://example.com/custom/v1)"
    code, out, _ = run(capsys, "verify", str(image), "--key", str(keys / "ci.pub"))
    assert (code, out.splitlines()[-1]) == (0, "1 verified, 0 rejected")

    code, out, err = run(capsys, "attest", str(image), *argv[1:])
    assert (code, out) == (2, "")
    assert err == "error: give the image once: as IMAGE, not also as --image\n"


def test_attest_without_an_image_names_what_is_missing(
    predicate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "attest", "--predicate", str(predicate)) == (2, "", (
        "error: missing IMAGE, --type URI\n"
        "  hint: affidavit attest IMAGE@sha256:DIGEST --predicate FILE --type URI --key KEY\n"
    ))  # fmt: skip
