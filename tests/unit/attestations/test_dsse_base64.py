"""``dsse.b64decode``: the fast (pybase64) decode gives exactly the standard library's strict
decode (``b64decode_stdlib``) or leaves the decision to it, on valid payloads and on every kind of
damage: characters outside the alphabet, misplaced or excess padding, URL-safe text, whitespace,
non-ASCII text, lengths that are not a multiple of four."""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import Callable
from typing import TypeVar

import pytest

from affidavit.attestations import dsse
from affidavit.attestations.dsse import b64decode, b64decode_stdlib

T = TypeVar("T")


def _outcome(decode: Callable[[T], bytes], text: T) -> bytes | str:
    try:
        return decode(text)
    except (binascii.Error, ValueError):
        return "refused"


def _texts() -> list[str]:
    rng = random.Random(11)
    texts = [base64.b64encode(rng.randbytes(n)).decode() for n in (0, 1, 2, 3, 4, 5, 47, 19_000)]
    damage = ["=", "==", "===", "-", "_", " ", "\n", "!", "é", "\x00", "\\", '"', "A", "+", "/"]
    out = list(texts)
    for text in texts[1:]:
        for _ in range(60):
            chars = list(text)
            where = rng.randrange(len(chars) + 1)
            how = rng.randrange(3)
            if how == 0:
                chars.insert(where, rng.choice(damage))
            elif how == 1 and chars:
                chars[min(where, len(chars) - 1)] = rng.choice(damage)
            elif chars:
                del chars[min(where, len(chars) - 1)]
            out.append("".join(chars))
    # the standard library's oddities: padding after a full quantum, padding inside
    out += ["QUJD=", "QUJD==", "QUJDRA=", "QQ=", "QQ", "Q===", "QQ==QQ==", "=QQ=", "A/g/="]
    out += [base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode(), "-_-_", "+-/_"]
    return out


@pytest.mark.parametrize("text", _texts())
def test_the_same_bytes_or_the_same_refusal_as_the_standard_library(text: str) -> None:
    assert _outcome(b64decode, text) == _outcome(b64decode_stdlib, text)


def test_a_real_payload_takes_the_fast_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    text = base64.b64encode(random.Random(1).randbytes(19_000)).decode()
    monkeypatch.setattr(dsse, "b64decode_stdlib", None)  # calling it would raise TypeError
    assert b64decode(text) == base64.b64decode(text)


@pytest.mark.parametrize("text", [t for t in _texts() if t.isascii()])
def test_a_view_of_the_text_decodes_as_the_text(text: str) -> None:
    # an envelope parsed by msgspec hands its payload over as a view of the parsed bytes
    assert _outcome(b64decode, memoryview(text.encode())) == _outcome(b64decode_stdlib, text)
