"""``affidavit copy`` and the real cosign: after a copy to another registry, ``cosign verify``
and ``cosign verify-attestation`` accept the copy with the key that signed the original, both
for what cosign pushed (``.sig``, ``.att``) and for what ``affidavit attest`` pushed (cosign 2.6
reads its Sigstore bundle referrer through the fallback tag index), so an image promoted with
Affidavit keeps its evidence for cosign's users too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sigstore
from cosign_support import PASSWORD, Cosign

from affidavit.cli.main import main

TYPE = "https://affidavit.dev/attestations/interop-copy/v1"
# as in test_cosign_interop: cosign 2.6 verifies Affidavit's bundle referrer in its new-bundle
# mode, which needs a trusted root even for a key; offline, sigstore-python's public-good root
PUBLIC_GOOD_ROOT = (
    Path(sigstore.__file__).parent
    / "_store"
    / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    / "trusted_root.json"
)
OFFLINE = ("--insecure-ignore-tlog", "--allow-insecure-registry")
PUSH = ("--tlog-upload=false", "--allow-insecure-registry", "--yes")


def _verify_attestation(cosign: Cosign, key: str, image: str, check: bool = True) -> list[Any]:
    """The statements ``cosign verify-attestation`` accepts for ``image`` under ``key``."""
    result = cosign.run(
        "verify-attestation", "--key", key, "--type", TYPE, *OFFLINE,
        "--trusted-root", str(PUBLIC_GOOD_ROOT), image, check=check,
    )  # fmt: skip
    if result.returncode != 0:
        return []
    return [
        json.loads(base64.b64decode(json.loads(line)["payload"]))
        for line in result.stdout.splitlines()
        if line.strip()
    ]


@pytest.mark.parametrize("signed_by", ["cosign", "affidavit"])
def test_cosign_verifies_the_copy(
    signed_by: str,
    cosign: Cosign,
    cosign_keys: Path,
    sample_image: Callable[[str], str],
    mirror_registry: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = sample_image(f"copy-{signed_by}")
    predicate = tmp_path / "predicate.json"
    predicate.write_text(json.dumps({"copied": True}))
    key, pub = f"{cosign_keys}.key", f"{cosign_keys}.pub"
    if signed_by == "cosign":
        cosign.run("sign", "--key", key, *PUSH, image)
        cosign.run("attest", "--key", key, "--type", TYPE, "--predicate", str(predicate),
                   *PUSH, image)  # fmt: skip
    else:
        monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)
        argv = ["attest", image, "--predicate", str(predicate), "--type", TYPE, "--key", key]
        assert main(argv) == 0
    capsys.readouterr()

    digest = image.split("@")[1]
    copy = f"{mirror_registry.host}/mirror/copy-{signed_by}"
    assert main(["copy", image, f"{copy}:v1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("cosign attestations (.att): 1 envelope, ")
    bundles = "none" if signed_by == "cosign" else "1 bundle, "
    assert lines[4].startswith(f"Sigstore bundles: {bundles}")

    if signed_by == "cosign":
        assert lines[3].startswith("cosign signatures (.sig): 1 signature, ")
        verified = cosign.run("verify", "--key", pub, *OFFLINE, f"{copy}:v1")
        [signature] = json.loads(verified.stdout)
        assert signature["critical"]["image"]["docker-manifest-digest"] == digest

    [statement] = _verify_attestation(cosign, pub, f"{copy}@{digest}")
    assert statement["predicateType"] == TYPE
    assert statement["predicate"] == {"copied": True}
    assert statement["subject"][0]["digest"]["sha256"] == digest.removeprefix("sha256:")
    assert [statement] == _verify_attestation(cosign, pub, image)  # as at the source

    other = cosign_keys.with_name("other")
    cosign.run("generate-key-pair", "--output-key-prefix", str(other))
    assert _verify_attestation(cosign, f"{other}.pub", f"{copy}@{digest}", check=False) == []
