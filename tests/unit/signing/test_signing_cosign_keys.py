"""cosign's encrypted key file format: write/read round trips, password errors, tampering, and
(when a cosign binary has been built) keys made by `cosign generate-key-pair` itself."""

from __future__ import annotations

import base64
import glob
import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from affidavit.attestations.cosign_keys import (
    COSIGN_PEM_TYPE,
    SIGSTORE_PEM_TYPE,
    decrypt_cosign_key,
    write_cosign_key,
)
from affidavit.attestations.dsse import parse_envelope, sign_envelope, verify_envelope
from affidavit.attestations.keys import keyid_of, load_signer, load_verifier, public_pem
from affidavit.errors import KeyMaterialError


@pytest.mark.parametrize("pem_type", [SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE])
def test_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pem_type: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = write_cosign_key(key, b"hunter2", pem_type=pem_type)
    assert data.startswith(f"-----BEGIN {pem_type}-----\n".encode())
    body = json.loads(base64.b64decode(b"".join(data.splitlines()[1:-1])))
    assert body["kdf"]["name"] == "scrypt"
    assert body["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert len(base64.b64decode(body["kdf"]["salt"])) == 32
    assert body["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(body["cipher"]["nonce"])) == 24
    path = tmp_path / "cosign.key"
    path.write_bytes(data)
    monkeypatch.setenv("COSIGN_PASSWORD", "hunter2")
    signer = load_signer(path)
    assert signer.keyid == keyid_of(key.public_key())
    envelope = sign_envelope(b"{}", signer)
    verifier = load_verifier(public_pem(key.public_key()), name="cosign.pub")
    assert verify_envelope(parse_envelope(envelope.to_json()), [verifier]).signer == "cosign.pub"


@pytest.mark.parametrize(
    ("strength", "n"), [("legacy", 32768), ("standard", 65536), ("owasp", 131072)]
)
def test_every_scrypt_strength_cosign_writes_loads(tmp_path: Path, strength: str, n: int) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = write_cosign_key(key, b"pw", strength=strength)  # type: ignore[arg-type]
    body = json.loads(base64.b64decode(b"".join(data.splitlines()[1:-1])))
    assert body["kdf"]["params"] == {"N": n, "r": 8, "p": 1}
    path = tmp_path / "cosign.key"
    path.write_bytes(data)
    assert load_signer(path, password=b"pw").keyid == keyid_of(key.public_key())


def test_ed25519_and_empty_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "cosign.key"
    path.write_bytes(write_cosign_key(key, b""))
    monkeypatch.setenv("COSIGN_PASSWORD", "")  # cosign allows an empty password
    assert load_signer(path).keyid == keyid_of(key.public_key())


def test_wrong_or_missing_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cosign.key"
    path.write_bytes(write_cosign_key(ec.generate_private_key(ec.SECP256R1()), b"right"))
    monkeypatch.setenv("COSIGN_PASSWORD", "wrong")
    with pytest.raises(KeyMaterialError) as info:
        load_signer(path)
    assert (
        info.value.message
        == f"cannot decrypt cosign key {path}: wrong password in $COSIGN_PASSWORD"
    )
    assert info.value.hint == (
        "export COSIGN_PASSWORD with the password given to `cosign generate-key-pair`"
    )
    with pytest.raises(KeyMaterialError) as info:
        load_signer(path, password=b"also wrong")
    assert info.value.message == f"cannot decrypt cosign key {path}: wrong password"
    monkeypatch.delenv("COSIGN_PASSWORD")
    with pytest.raises(KeyMaterialError) as info:
        load_signer(path)
    assert info.value.message == f"cosign key {path} is encrypted and $COSIGN_PASSWORD is not set"
    assert load_signer(path, password=b"right").kind == "ecdsa-p256"


def _rewrite(data: bytes, change: object) -> bytes:
    body = json.loads(base64.b64decode(b"".join(data.splitlines()[1:-1])))
    change(body)  # type: ignore[operator]
    lines = data.splitlines()
    return b"\n".join([lines[0], base64.b64encode(json.dumps(body).encode()), lines[-1], b""])


def test_tampered_parameters_are_refused_before_scrypt() -> None:
    data = write_cosign_key(ec.generate_private_key(ec.SECP256R1()), b"pw")
    huge = _rewrite(data, lambda b: b["kdf"]["params"].update(N=1 << 24))
    with pytest.raises(KeyMaterialError) as info:
        decrypt_cosign_key(huge, b"pw", source="cosign.key")
    assert info.value.message == (
        "cosign key cosign.key has unexpected scrypt parameters {'N': 16777216, 'r': 8, 'p': 1}"
    )
    other = _rewrite(data, lambda b: b["cipher"].update(name="aes-gcm"))
    with pytest.raises(KeyMaterialError) as info:
        decrypt_cosign_key(other, b"pw", source="cosign.key")
    assert info.value.message == (
        "cosign key cosign.key uses kdf 'scrypt' and cipher 'aes-gcm'; only scrypt and"
        " nacl/secretbox are supported"
    )
    flipped = _rewrite(
        data,
        lambda b: b.update(
            ciphertext=base64.b64encode(b"\0" + base64.b64decode(b["ciphertext"])[1:]).decode()
        ),
    )
    with pytest.raises(KeyMaterialError, match="wrong password in \\$COSIGN_PASSWORD"):
        decrypt_cosign_key(flipped, b"pw", source="cosign.key")


def _cosign_binary() -> str | None:
    home = Path.home() / ".cache" / "affidavit"
    for pattern in ("tools/*/bin/cosign", "k8s/*/bin/cosign"):
        found = sorted(glob.glob(str(home / pattern)))
        if found:
            return found[-1]
    return None


def test_cosign_generated_key_pair_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cosign = _cosign_binary()
    if cosign is None:
        pytest.skip("cosign is not built (~/.cache/affidavit/{tools,k8s}/*/bin/cosign)")
    env = {**os.environ, "COSIGN_PASSWORD": "from-cosign"}
    subprocess.run(
        [cosign, "generate-key-pair"], cwd=tmp_path, env=env, check=True, capture_output=True
    )
    monkeypatch.setenv("COSIGN_PASSWORD", "from-cosign")
    signer = load_signer(tmp_path / "cosign.key")
    verifier = load_verifier((tmp_path / "cosign.pub").read_bytes(), name="cosign.pub")
    assert signer.keyid == verifier.keyid
    assert verifier.verify(signer.sign(b"payload"), b"payload")
    # And the other way: cosign signs a blob with a key file Affidavit wrote.
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "aff.key").write_bytes(write_cosign_key(key, b"from-cosign"))
    (tmp_path / "blob").write_bytes(b"blob")
    subprocess.run(
        [
            *(cosign, "sign-blob", "--key", "aff.key", "--tlog-upload=false", "--yes"),
            *("--output-signature", "blob.sig", "blob"),
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    signature = base64.b64decode((tmp_path / "blob.sig").read_bytes().strip())
    mine = load_verifier(public_pem(key.public_key()), name="affidavit")
    assert mine.verify(signature, b"blob")
