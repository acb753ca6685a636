"""Interop with the real cosign: each side accepts what the other pushed to the real registry.

``cosign verify-attestation --key`` accepts what ``affidavit attest`` pushed (signed with a
cosign-generated, encrypted key), and ``affidavit verify`` accepts what ``cosign attest --key``
pushed; and each side rejects the other's attestation under the wrong key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sigstore
from cosign_support import PASSWORD, Cosign

from affidavit.cli.main import main

TYPE = "https://affidavit.dev/attestations/interop-test/v1"

# cosign 2.6 finds Affidavit's Sigstore bundle referrer (through the sha256-<hex> tag index) and
# then verifies in its new-bundle mode, which needs a trusted root even for a key; online it
# fetches one through TUF. Offline, give it the public-good root sigstore-python ships.
PUBLIC_GOOD_ROOT = (
    Path(sigstore.__file__).parent
    / "_store"
    / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    / "trusted_root.json"
)
OFFLINE_ROOT = ("--trusted-root", str(PUBLIC_GOOD_ROOT))


@pytest.fixture
def predicate(tmp_path: Path) -> Path:
    path = tmp_path / "predicate.json"
    path.write_text(json.dumps({"reviewed": True, "approvals": 2}))
    return path


def test_cosign_verifies_what_affidavit_pushed(
    cosign: Cosign,
    cosign_keys: Path,
    sample_image: Callable[[str], str],
    predicate: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = sample_image("from-affidavit")
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)
    argv = ["attest", image, "--predicate", str(predicate), "--type", TYPE]
    assert main([*argv, "--key", f"{cosign_keys}.key"]) == 0
    capsys.readouterr()
    result = cosign.run(
        "verify-attestation",
        "--key",
        f"{cosign_keys}.pub",
        "--insecure-ignore-tlog",
        "--type",
        TYPE,
        "--allow-insecure-registry",
        *OFFLINE_ROOT,
        image,
    )
    [line] = [ln for ln in result.stdout.splitlines() if ln.strip()]
    envelope = json.loads(line)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == TYPE
    assert statement["predicate"] == {"reviewed": True, "approvals": 2}
    assert statement["subject"][0]["digest"]["sha256"] == image.split("@sha256:")[1]
    assert "Verification for" in result.stderr

    other = cosign_keys.with_name("other")
    cosign.run("generate-key-pair", "--output-key-prefix", str(other))
    refused = cosign.run(
        "verify-attestation",
        "--key",
        f"{other}.pub",
        "--insecure-ignore-tlog",
        "--type",
        TYPE,
        "--allow-insecure-registry",
        *OFFLINE_ROOT,
        image,
        check=False,
    )
    assert refused.returncode != 0


def test_affidavit_verifies_what_cosign_pushed(
    cosign: Cosign,
    cosign_keys: Path,
    sample_image: Callable[[str], str],
    predicate: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = sample_image("from-cosign")
    cosign.run(
        "attest",
        "--key",
        f"{cosign_keys}.key",
        "--tlog-upload=false",
        "--type",
        TYPE,
        "--predicate",
        str(predicate),
        "--allow-insecure-registry",
        "--yes",
        image,
    )
    code = main(["verify", image, "--key", f"{cosign_keys}.pub", "--type", TYPE, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    document = json.loads(out)
    [verified] = document["verified"]
    assert verified["predicateType"] == TYPE
    assert verified["storage"] == "cosign-tag"
    assert verified["signer"] == f"{cosign_keys}.pub"
    assert verified["subject"] == image
    assert document["rejected"] == []

    wrong = cosign_keys.with_name("wrong")
    assert main(["keygen", "--output", str(wrong)]) == 0
    capsys.readouterr()
    assert main(["verify", image, "--key", f"{wrong}.pub"]) == 4
    assert capsys.readouterr().err == (
        f"error: no attestation for {image} verified: no signature verified with the trusted "
        f"keys ({wrong}.pub): the payload was changed after signing or was signed by another "
        "key\n"
    )
