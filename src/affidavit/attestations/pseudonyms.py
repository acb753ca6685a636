"""Pseudonyms for the people attestations name (GDPR Art. 4(5) pseudonymisation, Chapter V).

Attestations travel with their image to every registry it is copied to, and the names, emails
and logins of the authors, accepters and reviewers they record are personal data. With a
pseudonym key, collection writes each of them as ``psn:KEYID:TOKEN``: an HMAC-SHA-256 of the
trimmed, lower-cased value under the key. Equal values stay equal, so "the reviewer is not the
author" and group membership are still judged, on pseudonyms; without the key nobody can tell
whose they are, and the key's holder re-identifies by computing the pseudonyms of the people in
question (``affidavit pseudonym of``). ``KEYID`` is the first 16 hex digits of the key's
SHA-256: a pseudonym says which key made it, so a policy listing another key's pseudonyms is
explained, not silently unmatched, and a region can refuse any key but its own
(``evidence.pseudonymKeyIds``). Sixteen digits, 64 bits: with eight, a team could try keys
until one had the region's key id (2^32 SHA-256s, minutes on one core) and hide people behind a
key nobody accountable holds.

Both sides use this one module: collection to write pseudonyms, admission to check that the
evidence names nobody in plain text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from affidavit.attestations.predicates.review import Identity
from affidavit.errors import InputError

__all__ = [
    "MIN_KEY_BYTES",
    "PERSON_DETAIL",
    "PseudonymKey",
    "bot_account",
    "is_pseudonym",
    "is_pseudonymous_name",
    "key_id_of",
    "load_key",
    "reveal",
]

#: The least key material taken: a shorter secret could be found by trying them all.
MIN_KEY_BYTES = 32
_DOMAIN = b"affidavit pseudonym v1\x00"
_TOKEN_CHARS = 26  # of base32: 130 bits of the HMAC
_PSEUDONYM = re.compile(r"psn:([0-9a-f]{16}):[a-z2-7]{26}")
#: An identity evidence item of a person, as collection records it (``author: Alice (aider)
#: <alice@example.org>``); ``subject:`` and ``message:`` items quote the commit message's words,
#: which name a tool.
PERSON_DETAIL = re.compile(r"(?P<role>author|committer): (?P<name>.*) <(?P<email>[^<>]*)>")
_ANGLE = re.compile(r"^(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+)>$")
#: A name may keep the AI tool's suffix collection recognised (``psn:…:… (aider)``): the suffix
#: is the evidence that the commit was AI-generated, and names a tool, not a person. One word
#: of a tool's name, so that a suffix cannot carry "(Alice Smith)" past the check.
_NAME = re.compile(r"psn:[0-9a-f]{16}:[a-z2-7]{26}(?: \([A-Za-z0-9][A-Za-z0-9._-]{0,31}\))?")


@dataclass(frozen=True)
class PseudonymKey:
    """A pseudonym key: the secret (never printed) and the id its pseudonyms carry."""

    secret: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.secret).hexdigest()[:16]

    def of(self, value: str) -> str:
        """The pseudonym of a login, email or name (trimmed and compared lower-cased)."""
        normal = value.strip().lower().encode("utf-8")
        mac = hmac.new(self.secret, _DOMAIN + normal, hashlib.sha256).digest()
        token = base64.b32encode(mac).decode("ascii").lower()[:_TOKEN_CHARS]
        return f"psn:{self.key_id}:{token}"


def bot_account(who: Identity) -> bool:
    """A review identity that is a bot's account, not a person: flagged as a bot and called
    ``…[bot]`` (GitHub Apps), so it is kept readable and needs no pseudonym."""
    return who.is_bot and any(
        (value or "").strip().lower().endswith("[bot]") for value in (who.login, who.name)
    )


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` is a pseudonym as ``PseudonymKey.of`` writes them."""
    return _PSEUDONYM.fullmatch(value) is not None


def is_pseudonymous_name(value: str) -> bool:
    """A pseudonym, possibly followed by the AI tool's name suffix collection kept."""
    return _NAME.fullmatch(value) is not None


def key_id_of(value: str) -> str | None:
    """The key id a pseudonym (or a pseudonymous name) names, None for anything else."""
    match = _PSEUDONYM.match(value)
    return match.group(1) if match else None


def load_key(path: Path) -> PseudonymKey:
    """The key in ``path``: its bytes, less a trailing line break (``openssl rand -hex 32 >
    FILE`` and ``affidavit pseudonym key`` both write a usable one).

    Raises:
        InputError: the file cannot be read, or holds fewer than 32 bytes.
    """
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
    except OSError as e:
        raise InputError(
            f"cannot read pseudonym key {path}: {e.strerror or e}",
            hint="pass the file `affidavit pseudonym key` wrote (`collect --pseudonym-key`,"
            " `pseudonym of --key`)",
        ) from e
    if len(secret) < MIN_KEY_BYTES:
        raise InputError(
            f"pseudonym key {path} holds {len(secret)} bytes, fewer than {MIN_KEY_BYTES}: "
            "pseudonyms made with it could be reversed by trying every key",
            hint="make one with `affidavit pseudonym key -o FILE` (or `openssl rand -hex 32`)",
        )
    return PseudonymKey(secret)


def reveal(
    text: str,
    key: PseudonymKey,
    people: Iterable[str],
    quote: Callable[[str], str] = lambda value: value,
) -> str:
    """``text`` with each pseudonym that ``key`` gives one of ``people`` replaced by who it is
    (``quote``d, e.g. for JSON); others stay as they are. A person is a login, an email, a name,
    or ``Name <email>`` (both then count), as ``git log --format='%an <%ae>'`` lists them."""
    known: dict[str, str] = {}
    for line in people:
        value = line.strip()
        if not value:
            continue
        parts = [value]
        if match := _ANGLE.match(value):
            parts += [match["name"], match["email"]]
        for part in parts:
            if part.strip():
                known.setdefault(key.of(part), part.strip())
    return _PSEUDONYM.sub(lambda m: quote(known[m[0]]) if m[0] in known else m[0], text)
