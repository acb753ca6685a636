"""Key loading: PEM formats, encrypted PEM, key ids, and the exact errors for bad key material."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.keys import (
    generate_key_pair,
    keyid_of,
    load_signer,
    load_verifier,
    verifier_for,
)
from affidavit.errors import KeyMaterialError


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_ecdsa_signatures_are_der_over_sha256(tmp_path: Path) -> None:
    private, public = generate_key_pair("ecdsa-p256")
    signer = load_signer(_write(tmp_path, "k.pem", private))
    signature = signer.sign(b"message")
    r, s = decode_dss_signature(signature)  # raises unless ASN.1 DER
    assert r > 0 and s > 0
    key = serialization.load_pem_public_key(public)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, b"message", ec.ECDSA(hashes.SHA256()))
    assert signer.kind == "ecdsa-p256"


def test_sec1_ec_private_key_loads(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sec1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    signer = load_signer(_write(tmp_path, "ec.pem", sec1))
    assert signer.keyid == keyid_of(key.public_key())


def test_openssl_generated_keys_load(tmp_path: Path) -> None:
    for algorithm, options in (("EC", ["-pkeyopt", "ec_paramgen_curve:P-256"]), ("ed25519", [])):
        path = tmp_path / f"{algorithm}.pem"
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", algorithm, *options, "-out", str(path)],
            check=True,
            capture_output=True,
        )
        public = subprocess.run(
            ["openssl", "pkey", "-in", str(path), "-pubout"], check=True, capture_output=True
        ).stdout
        signer = load_signer(path)
        verifier = load_verifier(public, name="openssl")
        assert verifier.keyid == signer.keyid
        assert verifier.verify(signer.sign(b"data"), b"data")
        assert not verifier.verify(signer.sign(b"data"), b"other")


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_keyid_is_the_openssh_sha256_fingerprint(kind: str, tmp_path: Path) -> None:
    """cosign (go-securesystemslib SHA256KeyID) skips signatures whose key id differs from this."""
    private = (
        ec.generate_private_key(ec.SECP256R1())
        if kind == "ecdsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    key = private.public_key()
    pub = tmp_path / "key.pub"
    pub.write_bytes(
        key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert keyid_of(key) == fingerprint


def test_encrypted_pem_with_password_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = generate_key_pair("ed25519", password=b"s3cret")
    assert private.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    path = _write(tmp_path, "enc.pem", private)
    expected = load_verifier(public, name="k").keyid
    assert load_signer(path, password=b"s3cret").keyid == expected
    monkeypatch.setenv("MY_KEY_PASSWORD", "s3cret")
    assert load_signer(path, password_env="MY_KEY_PASSWORD").keyid == expected


def test_encrypted_pem_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    path = _write(tmp_path, "enc.pem", generate_key_pair("ecdsa-p256", password=b"right")[0])
    with pytest.raises(KeyMaterialError) as info:
        load_signer(path)
    assert info.value.message == f"private key {path} is encrypted and no password was given"
    assert info.value.hint == "set the password in $COSIGN_PASSWORD"
    with pytest.raises(KeyMaterialError) as info:
        load_signer(path, password=b"wrong")
    assert info.value.message == f"cannot decrypt private key {path}: wrong password"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError) as info:
        load_signer(tmp_path / "nope.key")
    assert info.value.message == f"signing key {tmp_path / 'nope.key'} does not exist"
    assert info.value.hint == (
        "pass --key PATH; create one with `cosign generate-key-pair` (ECDSA P-256)"
    )


def test_unsupported_curve_and_type(tmp_path: Path) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = _write(tmp_path, "p384.pem", p384)
    with pytest.raises(KeyMaterialError) as info:
        load_signer(path)
    assert info.value.message == (
        f"ECDSA key {path} is on curve secp384r1; Affidavit signs with P-256 (secp256r1) only"
    )
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = _write(
        tmp_path,
        "rsa.pem",
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    with pytest.raises(KeyMaterialError) as info:
        load_signer(path)
    assert info.value.message.startswith(f"key {path} is a ")
    assert info.value.message.endswith("; Affidavit signs with ECDSA P-256 or Ed25519")
    rsa_pub = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyMaterialError, match="only ECDSA P-256 and Ed25519 are supported"):
        load_verifier(rsa_pub, name="rsa")


def test_public_key_or_garbage_given_as_signing_key(tmp_path: Path) -> None:
    public = _write(tmp_path, "cosign.pub", generate_key_pair("ecdsa-p256")[1])
    with pytest.raises(KeyMaterialError) as info:
        load_signer(public)
    assert (
        info.value.message
        == f"{public} holds a public key (PUBLIC KEY); signing needs the private key"
    )
    garbage = _write(tmp_path, "x.key", b"hello")
    with pytest.raises(KeyMaterialError) as info:
        load_signer(garbage)
    assert info.value.message == f"{garbage} is not a PEM file"


def test_load_verifier_rejects_non_keys() -> None:
    with pytest.raises(KeyMaterialError) as info:
        load_verifier(b"not a key", name="team-a")
    assert info.value.message == "trusted key 'team-a' is not a PEM public key (found no PEM block)"


def test_verifier_for_policy_key_signer(tmp_path: Path) -> None:
    private, public = generate_key_pair("ecdsa-p256")
    signer = load_signer(_write(tmp_path, "k.pem", private))
    verifier = verifier_for(KeySigner(name="ci", public_key_pem=public.decode()))
    assert verifier.name == "ci"
    assert verifier.keyid == signer.keyid
    assert verifier.verify(signer.sign(b"x"), b"x")
    assert signer.verifier("ci") == verifier
