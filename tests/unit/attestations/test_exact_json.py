"""``loads_exact``: the fast JSON parse of verified payloads returns exactly what ``json.loads``
returns, and raises what it raises, on the inputs where orjson alone would differ (integers past
64 bits, NaN, lone surrogates, UTF-16 text, repeated keys, invalid JSON)."""

from __future__ import annotations

import json

import pytest

from affidavit.attestations.exact_json import loads_exact

SAME = [
    b'{"commit":"3f786850e387550fdab836ed7e6dc881de23001b","n":[1,2.5,true,null]}',
    b'{"big":123456789012345678901234567890}',  # orjson alone: a float
    b'{"edge":18446744073709551616,"neg":-9223372036854775809}',
    b'{"x":NaN,"y":-Infinity}',
    b'{"s":"\\ud800"}',
    '{"t":"UTF-16 text"}'.encode("utf-16"),
    b'{"a":1,"a":2}',
    b'{"unicode":"caf\\u00e9 \xc3\xa9"}',
]


@pytest.mark.parametrize("data", SAME)
def test_the_same_values_as_json(data: bytes) -> None:
    got, expected = loads_exact(data), json.loads(data)
    assert json.dumps(got) == json.dumps(expected)  # NaN != NaN: compare the texts
    assert type(got.get("big", 0)) is type(expected.get("big", 0))


@pytest.mark.parametrize("data", [b"{", b'{"a":}', b"", b"\xff\xfe{"])
def test_the_same_errors_as_json(data: bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(data)
    with pytest.raises(ValueError) as got:
        loads_exact(data)
    assert str(got.value) == str(expected.value)
