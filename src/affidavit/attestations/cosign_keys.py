"""Read and write cosign's encrypted private key files.

Teams that already sign with cosign keep one key file (``cosign generate-key-pair`` writes
``cosign.key``) and its password in ``$COSIGN_PASSWORD``; Affidavit signs with that same file so
that ``cosign verify-attestation --key cosign.pub`` and ``affidavit verify`` trust the same key.

The format is cosign's (``pkg/cosign/keys.go``, via go-securesystemslib's ``encrypted``
package): a PEM block of type ``ENCRYPTED SIGSTORE PRIVATE KEY`` (``ENCRYPTED COSIGN PRIVATE KEY``
in older cosign) whose body is the JSON
``{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"}, "cipher": {"name":
"nacl/secretbox", "nonce"}, "ciphertext"}`` (byte strings base64), the plaintext being the PKCS#8
DER private key. The scrypt parameters are checked against the known sets before any work is
done, as cosign does, so a tampered file cannot make the loader burn memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from affidavit.errors import KeyMaterialError

SIGSTORE_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
COSIGN_PEM_TYPES = (SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE)

#: The scrypt parameter sets go-securesystemslib accepts (legacy, standard, OWASP).
KNOWN_SCRYPT_PARAMS = (
    {"N": 32768, "r": 8, "p": 1},
    {"N": 65536, "r": 8, "p": 1},
    {"N": 131072, "r": 8, "p": 1},
)
ScryptStrength = Literal["legacy", "standard", "owasp"]
_STRENGTHS: dict[str, dict[str, int]] = dict(
    zip(("legacy", "standard", "owasp"), KNOWN_SCRYPT_PARAMS, strict=True)
)
# NaCl's secretbox sizes (PyNaCl loads only when a cosign key is decrypted or written).
_KEY_SIZE = 32
_NONCE_SIZE = 24
_SALT_SIZE = 32

CosignPrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def pem_type(data: bytes) -> str | None:
    """The type of the first PEM block in ``data`` (``"EC PRIVATE KEY"`` …), or None."""
    for line in data.splitlines():
        text = line.strip()
        if text.startswith(b"-----BEGIN ") and text.endswith(b"-----"):
            return text[len(b"-----BEGIN ") : -len(b"-----")].decode("ascii", "replace")
    return None


def is_cosign_key(data: bytes) -> bool:
    """True when ``data`` is a cosign encrypted private key file."""
    return pem_type(data) in COSIGN_PEM_TYPES


def _pem_body(data: bytes, kind: str, source: str) -> bytes:
    begin, end = f"-----BEGIN {kind}-----".encode(), f"-----END {kind}-----".encode()
    start, stop = data.find(begin), data.find(end)
    if start < 0 or stop < start:
        raise KeyMaterialError(f"{source} is not a complete PEM block of type {kind!r}")
    try:
        return base64.b64decode(b"".join(data[start + len(begin) : stop].split()), validate=True)
    except binascii.Error as e:
        raise KeyMaterialError(f"{source}: the PEM body is not base64 ({e})") from e


def _b64(document: dict[str, Any], key: str, source: str) -> bytes:
    value = document.get(key)
    if not isinstance(value, str):
        raise KeyMaterialError(f"cosign key {source} has no base64 string field {key!r}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as e:
        raise KeyMaterialError(f"cosign key {source}: field {key!r} is not base64") from e


def _derive(password: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    n, r, p = params["N"], params["r"], params["p"]
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=_KEY_SIZE
    )


def decrypt_cosign_key(
    data: bytes,
    password: bytes,
    *,
    source: str,
    password_env: str | None = "COSIGN_PASSWORD",  # noqa: S107 - a variable name
) -> CosignPrivateKey:
    """The private key inside a cosign key file; ``source`` names the file in messages.

    ``password_env`` names where the password came from (None: given directly), for the message.
    """
    kind = pem_type(data)
    if kind not in COSIGN_PEM_TYPES:
        raise KeyMaterialError(
            f"{source} is not a cosign key file (PEM type {kind!r})",
            hint=f"expected one of {', '.join(COSIGN_PEM_TYPES)}",
        )
    body = _pem_body(data, kind, source)
    try:
        document = json.loads(body)
        kdf, cipher = document["kdf"], document["cipher"]
        params = {k: int(kdf["params"][k]) for k in ("N", "r", "p")}
    except (ValueError, KeyError, TypeError) as e:
        raise KeyMaterialError(f"cosign key {source} is not cosign's encrypted JSON ({e})") from e
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise KeyMaterialError(
            f"cosign key {source} uses kdf {kdf.get('name')!r} and cipher {cipher.get('name')!r};"
            " only scrypt and nacl/secretbox are supported"
        )
    if params not in KNOWN_SCRYPT_PARAMS:
        raise KeyMaterialError(
            f"cosign key {source} has unexpected scrypt parameters {params}",
            hint="regenerate the key with `cosign generate-key-pair`",
        )
    salt, nonce = _b64(kdf, "salt", source), _b64(cipher, "nonce", source)
    ciphertext = _b64(document, "ciphertext", source)
    if len(nonce) != _NONCE_SIZE:
        raise KeyMaterialError(f"cosign key {source} has a {len(nonce)}-byte nonce, expected 24")
    import nacl.exceptions
    import nacl.secret

    box = nacl.secret.SecretBox(_derive(password, salt, params))
    try:
        der = box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as e:
        where = f" in ${password_env}" if password_env else ""
        fix = f"export {password_env} with" if password_env else "pass"
        raise KeyMaterialError(
            f"cannot decrypt cosign key {source}: wrong password{where}",
            hint=f"{fix} the password given to `cosign generate-key-pair`",
        ) from e
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError as e:
        raise KeyMaterialError(f"cosign key {source} does not hold a PKCS#8 private key") from e
    if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise KeyMaterialError(
        f"cosign key {source} holds a {type(key).__name__}; Affidavit signs with ECDSA P-256 or"
        " Ed25519",
        hint="generate an ECDSA P-256 key with `cosign generate-key-pair`",
    )


def write_cosign_key(
    private_key: CosignPrivateKey,
    password: bytes,
    *,
    pem_type: str = SIGSTORE_PEM_TYPE,
    strength: ScryptStrength = "legacy",
) -> bytes:
    """A cosign key file for ``private_key``, as ``cosign generate-key-pair`` writes one.

    ``strength`` picks the scrypt parameters: cosign 2.x writes "standard" (N=2^16); the default
    "legacy" (N=2^15) is the set every cosign and sigstore-rs version reads.
    """
    params = _STRENGTHS[strength]
    if pem_type not in COSIGN_PEM_TYPES:
        raise KeyMaterialError(f"{pem_type!r} is not a cosign key PEM type")
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt, nonce = os.urandom(_SALT_SIZE), os.urandom(_NONCE_SIZE)
    import nacl.secret

    sealed = nacl.secret.SecretBox(_derive(password, salt, params)).encrypt(der, nonce)
    document = {
        "kdf": {
            "name": "scrypt",
            "params": dict(params),
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed.ciphertext).decode(),
    }
    body = base64.b64encode(json.dumps(document).encode()).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(
        [f"-----BEGIN {pem_type}-----", *lines, f"-----END {pem_type}-----", ""]
    ).encode()
