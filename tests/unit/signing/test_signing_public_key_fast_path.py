"""``load_verifier`` reads a plain P-256 or Ed25519 ``PUBLIC KEY`` PEM without cryptography's
serialization package (a third of ``affidavit verify``'s start): the key and key id it returns
are the general loader's, and any other file (compressed point, other curve, headers, extra
blocks, a point off the curve) goes the general way, so it is accepted or refused exactly as
before."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from affidavit.attestations import keys
from affidavit.attestations.keys import generate_key_pair, keyid_of, load_verifier
from affidavit.errors import KeyMaterialError


def _general(pem: bytes, name: str) -> keys.Verifier:
    """What ``load_verifier`` returns without its fast path."""
    saved = keys._plain_public_key
    keys._plain_public_key = lambda pem, name: None
    try:
        return load_verifier(pem, name=name)
    finally:
        keys._plain_public_key = saved


def _raw(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_the_fast_path_returns_the_general_loaders_key_and_keyid(kind: str, newline: bytes) -> None:
    _, public = generate_key_pair(kind)  # type: ignore[arg-type]
    pem = public.replace(b"\n", newline)
    fast = keys._plain_public_key(pem, "k.pub")
    assert fast is not None
    general = _general(pem, "k.pub")
    assert (fast.name, fast.keyid) == (general.name, general.keyid)
    assert fast.keyid == keyid_of(general.public_key)
    assert _raw(fast.public_key) == _raw(general.public_key)
    assert type(fast.public_key) is type(general.public_key)


def _pem(der: bytes, header: bytes = b"") -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([b"-----BEGIN PUBLIC KEY-----", *([header] if header else []), *lines,
                       b"-----END PUBLIC KEY-----", b""])  # fmt: skip


def _p256_der(compressed: bool = False) -> bytes:
    """A P-256 SubjectPublicKeyInfo, its point uncompressed (65 bytes) or compressed (33)."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    form = serialization.PublicFormat
    point = key.public_bytes(
        serialization.Encoding.X962,
        form.CompressedPoint if compressed else form.UncompressedPoint,
    )
    bit_string = bytes([0x03, len(point) + 1, 0x00]) + point
    algorithm = bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107")
    return bytes([0x30, len(algorithm) + len(bit_string)]) + algorithm + bit_string


def test_other_files_go_the_general_way_and_get_its_answer() -> None:
    p384 = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    compressed = _pem(_p256_der(compressed=True))
    der = _p256_der()
    off_curve = _pem(der[:-1] + bytes([der[-1] ^ 1]))
    _, good = generate_key_pair("ecdsa-p256")
    two_blocks = good + good
    with_text = b"a comment\n" + good
    for pem in (p384, compressed, off_curve, two_blocks, with_text, _pem(b"\x30\x00")):
        assert keys._plain_public_key(pem, "k") is None
    # each is answered as the general loader answers it
    assert load_verifier(compressed, name="k").keyid == _general(compressed, "k").keyid
    for pem in (p384, off_curve, _pem(b"\x30\x00")):
        with pytest.raises(KeyMaterialError) as fast:
            load_verifier(pem, name="k")
        with pytest.raises(KeyMaterialError) as general:
            _general(pem, "k")
        assert fast.value.message == general.value.message


def test_a_plain_verify_key_loads_no_serialization_package() -> None:
    import subprocess
    import sys

    _, public = generate_key_pair("ecdsa-p256")
    probe = (
        "import sys\nfrom affidavit.attestations.keys import load_verifier\n"
        f"load_verifier({public!r}, name='k')\n"
        "print(sorted(m for m in sys.modules if m.startswith("
        "('cryptography.hazmat.primitives.serialization', 'affidavit.attestations.cosign_keys'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
