"""A seeded mutator of signed attestations and the oracle the verifier's answers are checked against.

Three originals that verify: a DSSE envelope signed with a trusted ECDSA key (a cosign-tag
layer), the same envelope in a Sigstore bundle with a public-key hint, and a real public-good
keyless Sigstore bundle. A case mutates one of them: the envelope's or bundle's fields (replaced,
dropped, retyped), the signature (bits flipped, random bytes, a valid signature of another
payload), the signed statement (edited and left with the old signature, or re-signed by an
untrusted key, or re-signed by the trusted key so the statement parser meets hostile but signed
content), and the bytes (flipped, truncated, a repeated key, a lone surrogate, deep nesting).

The oracle: a result may be verified only while the signed bytes (payload type and payload) are
the original's and one of the original signatures is still there, or when the trusted key
itself signed the mutated statement; every failure is an ``AffidavitError`` with a message.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affidavit.attestations.dsse import DSSE_MEDIA_TYPE, b64decode, sign_envelope
from affidavit.attestations.keys import PrivateKeySigner, generate_key_pair, load_signer
from affidavit.attestations.predicates import AI_PROVENANCE_V1
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import BUNDLE_MEDIA_TYPE, key_bundle

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sigstore"
KEYLESS_BUNDLE = (FIXTURES / "gcb_attestation_test-0.0.0.tar.gz.sigstore.json").read_bytes()
KEYLESS_ROOT = FIXTURES / "trusted_root.json"
KEYLESS_IDENTITY = "919436158236-compute@developer.gserviceaccount.com"
KEYLESS_ISSUER = "https://accounts.google.com"
KEYLESS_DIGEST = "sha256:461317362419124b6012e855423a9078d6de8aed3e74fa78cc74d669b23dc6cf"
KEY_DIGEST = "sha256:" + "ab" * 32

_ODD: tuple[Any, ...] = (None, "", 0, -1, 2**70, 1.5e308, True, [], {}, "x" * 5000, "\u0000",
                         "\u202e", "=", "====", "AAAA", ["a", 1, None], {"a": {"b": []}})  # fmt: skip


@dataclass(frozen=True)
class Original:
    """One verifying attestation: its layer bytes, media type, the image digest it is about, and
    the signed bytes (payload type, payload) and signature bytes it carries."""

    name: str
    media_type: str
    data: bytes
    digest: str
    payload_type: str
    payload: bytes
    signatures: frozenset[bytes]


@dataclass(frozen=True)
class Case:
    number: int
    original: Original
    mutation: str
    data: bytes
    resigned_by_trusted: bool = False


def _dsse_of(document: Any) -> Any:
    """The DSSE envelope object inside a layer document (itself, or a bundle's dsseEnvelope)."""
    if isinstance(document, dict) and "dsseEnvelope" in document:
        return document["dsseEnvelope"]
    return document


def signed_parts(data: bytes) -> tuple[str, bytes, frozenset[bytes]] | None:
    """(payload type, payload, decodable signatures) of a layer as the last-key-wins JSON reads
    it, or None when it is not even that shape."""
    try:
        envelope = _dsse_of(json.loads(data))
        payload = b64decode(envelope["payload"])
        sigs = set()
        for s in envelope["signatures"]:
            try:
                sigs.add(b64decode(s["sig"]))
            except (ValueError, TypeError, KeyError):
                continue
        return str(envelope["payloadType"]), payload, frozenset(sigs)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


class Originals:
    """The three originals, the trusted key and an untrusted one (made once per run)."""

    def __init__(self, directory: Path) -> None:
        private, self.public_pem = generate_key_pair("ecdsa-p256")
        (directory / "trusted.pem").write_bytes(private)
        self.trusted: PrivateKeySigner = load_signer(directory / "trusted.pem")
        stranger, _ = generate_key_pair("ecdsa-p256")
        (directory / "stranger.pem").write_bytes(stranger)
        self.untrusted: PrivateKeySigner = load_signer(directory / "stranger.pem")
        statement = make_statement(
            "registry.example/shop/web", KEY_DIGEST, AI_PROVENANCE_V1, {"source": {"x": 1}}
        )
        envelope = sign_envelope(statement, self.trusted).to_json()
        other = sign_envelope(statement.replace(b"web", b"api"), self.trusted)
        self.other_signature = other.signatures[0].sig  # valid, for another payload
        self.all = [
            self._original("dsse", DSSE_MEDIA_TYPE, envelope, KEY_DIGEST),
            self._original("key-bundle", BUNDLE_MEDIA_TYPE, key_bundle(envelope), KEY_DIGEST),
            self._original("keyless-bundle", BUNDLE_MEDIA_TYPE, KEYLESS_BUNDLE, KEYLESS_DIGEST),
        ]

    @staticmethod
    def _original(name: str, media_type: str, data: bytes, digest: str) -> Original:
        parts = signed_parts(data)
        assert parts is not None
        return Original(name, media_type, data, digest, *parts)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _mutate_tree(rng: random.Random, doc: Any) -> str:
    """Replace, drop or retype one node of ``doc`` in place; the mutation's name."""
    paths = _paths(doc)[1:]
    if not paths:
        return "empty"
    path = rng.choice(paths)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    how = rng.choice(("replace", "drop", "retype"))
    if how == "drop" and isinstance(parent, dict):
        del parent[path[-1]]
    elif how == "retype":
        parent[path[-1]] = [parent[path[-1]]] if rng.random() < 0.5 else {"v": parent[path[-1]]}
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(_ODD))
    return f"{how} {'.'.join(map(str, path))[:80]}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Mutator:
    def __init__(self, seed: int, originals: Originals) -> None:
        self.rng = random.Random(seed)
        self.originals = originals

    def case(self, number: int) -> Case:
        rng = self.rng
        original = rng.choice(self.originals.all)
        doc = json.loads(original.data)
        envelope = _dsse_of(doc)
        kind = rng.choice(("none", "tree", "dsse", "signature", "other-signature", "statement",
                           "untrusted", "trusted", "payload-type", "bytes"))  # fmt: skip
        resigned = False
        if kind == "tree":
            kind = "tree " + _mutate_tree(rng, doc)
        elif kind == "dsse":
            kind = "dsse " + _mutate_tree(rng, envelope)
        elif kind == "signature":
            sig = bytearray(b64decode(envelope["signatures"][0]["sig"]))
            if rng.random() < 0.5 and sig:
                for _ in range(rng.randint(1, 3)):
                    sig[rng.randrange(len(sig))] ^= 1 << rng.randrange(8)
            else:
                sig = bytearray(rng.randbytes(rng.choice((0, 1, 64, 70, 72, 512))))
            envelope["signatures"][0]["sig"] = _b64(bytes(sig))
        elif kind == "other-signature":
            envelope["signatures"][0]["sig"] = self.originals.other_signature
        elif kind in ("statement", "untrusted", "trusted"):
            statement = json.loads(original.payload)
            kind += " " + _mutate_tree(rng, statement)
            payload = json.dumps(statement).encode()
            envelope["payload"] = _b64(payload)
            if not kind.startswith("statement"):
                signer = self.originals.trusted if kind.startswith("trusted") else None
                signer = signer or self.originals.untrusted
                signed = sign_envelope(payload, signer, payload_type=original.payload_type)
                envelope["signatures"] = [json.loads(signed.to_json())["signatures"][0]]
                resigned = signer is self.originals.trusted
        elif kind == "payload-type":
            envelope["payloadType"] = rng.choice(
                ("application/json", "application/vnd.in-toto+JSON", "", "text/plain")
            )
        data = json.dumps(doc).encode()
        if kind == "bytes":
            kind, data = self._bytes(data)
        return Case(number, original, kind, data, resigned)

    def _bytes(self, data: bytes) -> tuple[str, bytes]:
        rng = self.rng
        how = rng.choice(("flip", "truncate", "repeat", "surrogate", "nest", "insert"))
        if how == "flip":
            at = rng.randrange(len(data))
            return how, data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
        if how == "truncate":
            return how, data[: rng.randrange(len(data))]
        if how == "repeat":  # a second value for a key: json keeps the last one
            key = rng.choice((b'"payload"', b'"sig"', b'"payloadType"', b'"dsseEnvelope"'))
            at = data.find(key + b":")
            if at < 0:
                return how, data
            return how, data[:at] + key + b': "AAAA", ' + data[at:]
        if how == "surrogate":
            quotes = [i for i, c in enumerate(data) if c == ord('"')]
            at = rng.choice(quotes)
            return how, data[: at + 1] + rng.choice((b"\\ud800", b"\\udfff")) + data[at + 1 :]
        if how == "nest":
            depth = rng.choice((100, 1_000, 50_000))
            return how, data[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
        at = rng.randrange(len(data))
        return how, data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]


def forged(case: Case, verified: bool) -> str | None:
    """Why a verified result for ``case`` would be a forgery (None when it would not be)."""
    if not verified or case.resigned_by_trusted:
        return None
    parts = signed_parts(case.data)
    original = case.original
    if parts is None:
        return "verified a layer whose envelope cannot even be read"
    payload_type, payload, sigs = parts
    if (payload_type, payload) != (original.payload_type, original.payload):
        return "verified a payload (or payload type) the trusted signer never signed"
    if not sigs & original.signatures:
        return "verified an envelope none of whose signatures is the signer's"
    return None
