"""Signing and verification keys: load them, name them, and sign or check bytes with them.

Affidavit signs with the keys teams already have for air-gapped and enterprise use: ECDSA P-256
and Ed25519 private keys in PEM (PKCS#8 or SEC1, optionally password-encrypted), and cosign's
encrypted key files. ECDSA signatures are ASN.1 DER over SHA-256 of the message, exactly as cosign
makes them, so one key pair works with both tools. Every key problem a user can meet (no file,
wrong password, a curve or key type that is not supported) is a ``KeyMaterialError`` naming the
fix.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, cast

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from affidavit.errors import KeyMaterialError

if TYPE_CHECKING:
    from affidavit.attestations.evidence import KeySigner

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
KeyKind = Literal["ecdsa-p256", "ed25519"]

_MAKE_KEY = "create one with `cosign generate-key-pair` (ECDSA P-256)"


class Signer(Protocol):
    """Anything that signs bytes: a private key here, or another backend elsewhere."""

    @property
    def keyid(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


def keyid_of(public_key: PublicKey) -> str:
    """The DSSE key id cosign and sigstore-go compute for a key (go-securesystemslib's
    ``SHA256KeyID``: the OpenSSH SHA-256 fingerprint, ``SHA256:<unpadded base64>``).

    cosign skips a signature whose non-empty key id differs from the one it computes, so every
    envelope Affidavit signs carries this id and verifies with cosign as well as with Affidavit.
    """
    from cryptography.hazmat.primitives import serialization

    openssh = public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    blob = base64.b64decode(openssh.split()[1])
    return _ssh_keyid(blob)


def _ssh_keyid(blob: bytes) -> str:
    """``keyid_of`` from the key's OpenSSH wire-format blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


#: The DER SubjectPublicKeyInfo of a P-256 key and of an Ed25519 key, up to the key's bytes:
#: every such key's SPKI is this prefix and the key (a 65-byte uncompressed point, 32 bytes).
_P256_SPKI = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
_ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")
_PEM_BEGIN, _PEM_END = b"-----BEGIN PUBLIC KEY-----", b"-----END PUBLIC KEY-----"


def _plain_public_key(pem: bytes, name: str) -> Verifier | None:
    """The ``Verifier`` of a lone PEM ``PUBLIC KEY`` block holding a P-256 (uncompressed) or
    Ed25519 key (what ``cosign.pub`` and ``openssl pkey -pubout`` write), read without
    cryptography's serialization package; None for any other file (``load_verifier`` reads it).

    The fast path for ``affidavit verify``: ``serialization`` loads the SSH key formats and every
    cipher with it, a third of the command's start. The bytes are matched exactly, so a key read
    here is the one ``load_pem_public_key`` would return (``from_encoded_point`` checks the point
    is on the curve); anything else goes the general way.
    """
    body = pem.strip()
    if not (body.startswith(_PEM_BEGIN) and body.endswith(_PEM_END)):
        return None
    text = body[len(_PEM_BEGIN) : -len(_PEM_END)]
    if b"-" in text or b":" in text:
        return None  # another block, or headers: the general loader decides
    try:
        der = base64.b64decode(b"".join(text.split()), validate=True)
    except ValueError:
        return None
    key: PublicKey
    if len(der) == len(_P256_SPKI) + 65 and der.startswith(_P256_SPKI) and der[-65] == 4:
        point = der[-65:]
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            return None
        blob = _ssh_string(b"ecdsa-sha2-nistp256") + _ssh_string(b"nistp256")
        blob += _ssh_string(point)
    elif len(der) == len(_ED25519_SPKI) + 32 and der.startswith(_ED25519_SPKI):
        raw = der[-32:]
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        blob = _ssh_string(b"ssh-ed25519") + _ssh_string(raw)
    else:
        return None
    return Verifier(name=name, keyid=_ssh_keyid(blob), public_key=key)


def public_pem(public_key: PublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of ``public_key`` (what ``cosign.pub`` holds)."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _kind_of(key: PrivateKey | PublicKey) -> KeyKind:
    return (
        "ed25519"
        if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)
        else "ecdsa-p256"
    )


class _VerifyECDSA(ec.ECDSA):
    """ECDSA over SHA-256 for checking signatures, made without ``ec.ECDSA``'s constructor.

    That constructor imports cryptography's whole OpenSSL backend (every cipher and mode) to ask
    whether deterministic signing is supported, a question only signing asks: it cost a tenth of
    an ``affidavit verify``. A verifier reads the two public properties, given here.
    """

    def __init__(self) -> None:  # no backend: see the class docstring
        pass

    @property
    def algorithm(self) -> hashes.HashAlgorithm:
        return hashes.SHA256()

    @property
    def deterministic_signing(self) -> bool:
        return False


class _VerifyECDSAPrehashed(ec.ECDSA):
    """``_VerifyECDSA`` over a SHA-256 digest computed by the caller (``Verifier.verify_parts``)."""

    def __init__(self) -> None:  # no backend: see _VerifyECDSA
        pass

    @property
    def algorithm(self) -> hashes.HashAlgorithm | Prehashed:
        return _PREHASHED_SHA256

    @property
    def deterministic_signing(self) -> bool:
        return False


_ECDSA_SHA256 = _VerifyECDSA()
_PREHASHED_SHA256 = Prehashed(hashes.SHA256())
_ECDSA_PREHASHED = _VerifyECDSAPrehashed()


@dataclass(frozen=True)
class Verifier:
    """A trusted public key under the name policies and reports use for it."""

    name: str
    keyid: str
    public_key: PublicKey
    # The key if it is an ECDSA one (else Ed25519), asked once: the key types are abstract
    # classes, whose ``isinstance`` runs Python code (``abc``) at every signature checked.
    _ecdsa: ec.EllipticCurvePublicKey | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ecdsa = None if isinstance(self.public_key, ed25519.Ed25519PublicKey) else self.public_key
        object.__setattr__(self, "_ecdsa", ecdsa)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``data``."""
        try:
            if self._ecdsa is not None:
                self._ecdsa.verify(signature, data, _ECDSA_SHA256)
            else:
                cast(ed25519.Ed25519PublicKey, self.public_key).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def verify_parts(self, signature: bytes, parts: Sequence[bytes]) -> bool:
        """``verify(signature, b"".join(parts))``, without joining them for an ECDSA key (its
        digest is fed the parts in turn): a DSSE payload of tens of KB is not copied into its
        pre-authentication encoding (``dsse.verify_envelope``)."""
        return self.verify_message(signature, Message(parts))

    def verify_message(self, signature: bytes, message: Message) -> bool:
        """``verify_parts`` over a ``Message`` that several signatures and keys share: its
        digest (ECDSA) or joined bytes (Ed25519) are made once, not once a try."""
        if self._ecdsa is None:
            return self.verify(signature, message.joined())
        try:
            self._ecdsa.verify(signature, message.sha256(), _ECDSA_PREHASHED)
        except (InvalidSignature, ValueError):
            return False
        return True


class Message:
    """A signed message given in parts, with its SHA-256 digest and its joined bytes each worked
    out on first use: an envelope's every signature is tried with every trusted key."""

    __slots__ = ("_digest", "_joined", "parts")

    def __init__(self, parts: Sequence[bytes]) -> None:
        self.parts = parts
        self._digest: bytes | None = None
        self._joined: bytes | None = None

    def sha256(self) -> bytes:
        if self._digest is None:
            digest = hashlib.sha256()
            for part in self.parts:
                digest.update(part)
            self._digest = digest.digest()
        return self._digest

    def joined(self) -> bytes:
        if self._joined is None:
            self._joined = b"".join(self.parts)
        return self._joined


@dataclass(frozen=True)
class PrivateKeySigner:
    """A loaded ECDSA P-256 or Ed25519 private key (satisfies ``Signer``)."""

    private_key: PrivateKey = field(repr=False)
    keyid: str

    @property
    def kind(self) -> KeyKind:
        return _kind_of(self.private_key)

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_pem(self) -> bytes:
        return public_pem(self.public_key)

    def verifier(self, name: str) -> Verifier:
        """The matching ``Verifier``, trusted under ``name``."""
        return Verifier(name=name, keyid=keyid_of(self.public_key), public_key=self.public_key)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature, or ECDSA-SHA256 as ASN.1 DER (cosign's encoding)."""
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(data)
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))


def _checked(key: object, source: str) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyMaterialError(
                f"ECDSA key {source} is on curve {key.curve.name}; Affidavit signs with P-256"
                " (secp256r1) only",
                hint=f"{_MAKE_KEY}, or `openssl genpkey -algorithm ed25519`",
            )
        return key
    raise KeyMaterialError(
        f"key {source} is a {type(key).__name__.lstrip('_')}; Affidavit signs with ECDSA P-256 or"
        " Ed25519",
        hint=_MAKE_KEY,
    )


def _load_pem_private(data: bytes, password: bytes | None, source: str) -> object:
    from cryptography.hazmat.primitives import serialization

    from affidavit.attestations.cosign_keys import pem_type

    kind = pem_type(data)
    if kind is None:
        raise KeyMaterialError(
            f"{source} is not a PEM file",
            hint=f"pass a PEM private key or a cosign.key file; {_MAKE_KEY}",
        )
    if "PUBLIC KEY" in kind or kind == "CERTIFICATE":
        raise KeyMaterialError(
            f"{source} holds a public key ({kind}); signing needs the private key",
            hint="pass the private key file (for cosign keys, cosign.key rather than cosign.pub)",
        )
    encrypted = kind == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in data
    try:
        return serialization.load_pem_private_key(data, password=password if encrypted else None)
    except TypeError as e:  # encrypted but no password
        raise KeyMaterialError(
            f"private key {source} is encrypted and no password was given",
            hint="set the password in $COSIGN_PASSWORD",
        ) from e
    except UnsupportedAlgorithm as e:
        raise KeyMaterialError(f"private key {source} uses an unsupported algorithm ({e})") from e
    except ValueError as e:
        if encrypted:
            raise KeyMaterialError(
                f"cannot decrypt private key {source}: wrong password",
                hint="set the key's password in $COSIGN_PASSWORD",
            ) from e
        raise KeyMaterialError(f"private key {source} cannot be read ({e})") from e


def load_signer(
    path: Path,
    *,
    password: bytes | None = None,
    password_env: str = "COSIGN_PASSWORD",  # noqa: S107 - a variable name
    keyid: str | None = None,
) -> PrivateKeySigner:
    """Load a signing key file: PEM (PKCS#8/SEC1, maybe encrypted) or a cosign key file.

    The password of an encrypted key is ``password`` or else the ``password_env`` variable.
    ``keyid`` overrides the envelope key id (default: ``keyid_of`` the public key).
    """
    from affidavit.attestations.cosign_keys import decrypt_cosign_key, is_cosign_key

    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise KeyMaterialError(
            f"signing key {source} does not exist", hint=f"pass --key PATH; {_MAKE_KEY}"
        ) from e
    except OSError as e:
        raise KeyMaterialError(f"cannot read signing key {source}: {e.strerror}") from e
    env_password = os.environ.get(password_env)
    from_env = password is None
    secret = (
        password
        if password is not None
        else (env_password.encode() if env_password is not None else None)
    )
    if is_cosign_key(data):
        if secret is None:
            raise KeyMaterialError(
                f"cosign key {source} is encrypted and ${password_env} is not set",
                hint=f"export {password_env} with the password given to `cosign generate-key-pair`",
            )
        key: object = decrypt_cosign_key(
            data, secret, source=source, password_env=password_env if from_env else None
        )
    else:
        key = _load_pem_private(data, secret, source)
    private = _checked(key, source)
    return PrivateKeySigner(
        private_key=private, keyid=keyid if keyid is not None else keyid_of(private.public_key())
    )


def load_verifier(pem: bytes, *, name: str) -> Verifier:
    """A ``Verifier`` from a PEM public key (or the public key of a PEM certificate)."""
    plain = _plain_public_key(pem, name)
    if plain is not None:
        return plain
    from cryptography.hazmat.primitives import serialization

    from affidavit.attestations.cosign_keys import pem_type

    kind = pem_type(pem)
    try:
        if kind == "CERTIFICATE":
            from cryptography import x509  # a verify with public keys never loads X.509

            key: object = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise KeyMaterialError(
            f"trusted key {name!r} is not a PEM public key (found {kind or 'no PEM block'})",
            hint="give the public key, e.g. cosign.pub or the output of `openssl pkey -pubout`",
        ) from e
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, ec.SECP256R1):
        raise KeyMaterialError(
            f"trusted key {name!r} is on curve {key.curve.name}; only P-256 and Ed25519 are"
            " supported"
        )
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise KeyMaterialError(
            f"trusted key {name!r} is a {type(key).__name__.lstrip('_')}; only ECDSA P-256 and"
            " Ed25519 are supported"
        )
    return Verifier(name=name, keyid=keyid_of(key), public_key=key)


def verifier_for(signer: KeySigner) -> Verifier:
    """The ``Verifier`` of a trusted ``KeySigner`` from a policy."""
    return load_verifier(signer.public_key_pem.encode(), name=signer.name)


def generate_key_pair(kind: KeyKind, *, password: bytes | None = None) -> tuple[bytes, bytes]:
    """A fresh key pair as (PKCS#8 private PEM, encrypted when ``password``; public PEM)."""
    private: PrivateKey
    if kind == "ecdsa-p256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif kind == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise KeyMaterialError(f"unknown key kind {kind!r}; use ecdsa-p256 or ed25519")
    from cryptography.hazmat.primitives import serialization

    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return private_pem, public_pem(private.public_key())
