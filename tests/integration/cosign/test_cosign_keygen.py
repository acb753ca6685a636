"""`affidavit keygen` writes cosign's own key format: the real cosign signs and attests with a key
Affidavit made (encrypted with $COSIGN_PASSWORD, or with an empty password under --cosign), and
`affidavit verify` accepts what cosign pushed with it; a key without a password is warned about."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cosign_support import PASSWORD, Cosign

from affidavit.attestations.cosign_keys import SIGSTORE_PEM_TYPE
from affidavit.cli.main import main

TYPE = "https://affidavit.dev/attestations/interop-test/v1"


@pytest.mark.parametrize("password", [PASSWORD, ""], ids=["password", "no-password"])
def test_cosign_attests_with_a_key_affidavit_made(
    password: str,
    cosign: Cosign,
    sample_image: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", password)
    prefix = tmp_path / "made-by-affidavit"
    assert main(["keygen", "--cosign", "-o", str(prefix)]) == 0
    out, err = capsys.readouterr()
    assert out == f"private key {prefix}.key\npublic key  {prefix}.pub\n"
    assert err == ("" if password else (
        f"warning: {prefix}.key is not protected by a password; set $COSIGN_PASSWORD to encrypt "
        "it (anyone who reads the file can sign as you)\n"
    ))  # fmt: skip
    assert (prefix.with_suffix(".key")).read_text().startswith(f"-----BEGIN {SIGSTORE_PEM_TYPE}")

    # cosign reads the private key: the public key it derives is ours
    derived = cosign.run("public-key", "--key", f"{prefix}.key", password=password)
    assert derived.stdout == prefix.with_suffix(".pub").read_text()

    image = sample_image(f"cosign-signs-{'with' if password else 'without'}-password")
    predicate = tmp_path / "predicate.json"
    predicate.write_text('{"made": "by affidavit keygen"}')
    cosign.run("attest", "--key", f"{prefix}.key", "--tlog-upload=false", "--type", TYPE,
               "--predicate", str(predicate), "--allow-insecure-registry", "--yes", image,
               password=password)  # fmt: skip
    assert main(["verify", image, "--key", f"{prefix}.pub", "--type", TYPE]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 verified, 0 rejected"


def test_a_password_makes_cosigns_format_without_asking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)
    assert main(["keygen", "-o", str(tmp_path / "ci")]) == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "ci.key").read_text().startswith(f"-----BEGIN {SIGSTORE_PEM_TYPE}")
    monkeypatch.delenv("COSIGN_PASSWORD")
    assert main(["keygen", "--ledger-key", "-o", str(tmp_path / "ledger")]) == 0
    assert capsys.readouterr().err == ""  # the ledger key is unencrypted by design, in a Secret
    assert main(["keygen", "--ledger-key", "--cosign", "-o", str(tmp_path / "x")]) == 2
