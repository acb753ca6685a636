"""Key fixtures for the signing tests: real key pairs written to real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from affidavit.attestations.keys import KeyKind, generate_key_pair


@pytest.fixture(params=["ecdsa-p256", "ed25519"])
def key_files(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, bytes]:
    """(private key PEM path, public key PEM) for each supported key kind."""
    kind: KeyKind = request.param
    private, public = generate_key_pair(kind)
    path = tmp_path / f"{kind}.pem"
    path.write_bytes(private)
    return path, public
