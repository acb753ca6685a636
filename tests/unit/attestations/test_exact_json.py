"""``loads_exact``: the fast JSON parse of verified payloads returns exactly what ``json.loads``
returns, and raises what it raises, on the inputs where orjson alone would differ (integers past
64 bits, NaN, lone surrogates, UTF-16 text, repeated keys, invalid JSON)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest

from affidavit.attestations import exact_json
from affidavit.attestations.exact_json import loads_exact, loads_numberless


@pytest.fixture(autouse=True, params=["json", "orjson"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each case twice: before orjson is worth importing (``json`` parses), and after."""
    if request.param == "json":
        monkeypatch.setattr(exact_json, "_orjson", None)
        monkeypatch.setattr(exact_json, "_fast", lambda size: None)
    else:
        monkeypatch.setattr(exact_json, "_orjson", orjson)
    yield request.param


SAME = [
    b'{"commit":"3f786850e387550fdab836ed7e6dc881de23001b","n":[1,2.5,true,null]}',
    b'{"big":123456789012345678901234567890}',  # orjson alone: a float
    b'{"edge":18446744073709551616,"neg":-9223372036854775809}',
    b'{"x":NaN,"y":-Infinity}',
    b'{"s":"\\ud800"}',
    '{"t":"UTF-16 text"}'.encode("utf-16"),
    b'{"a":1,"a":2}',
    b'{"a":1,"\\u0061":2}',  # the same key, escaped: still the last one
    b'{ "a" :1 ,\n"a"\t:\r2 }',
    # a second subject after the predicate (and one inside it): the last top-level one counts
    b'{"subject":[1],"predicate":{"subject":[2]},"subject":[3]}',
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
    for loads in (loads_exact, loads_numberless):
        with pytest.raises(ValueError) as got:
            loads(data)
        assert str(got.value) == str(expected.value)


_PROBE = """
import sys
from affidavit.attestations import exact_json
exact_json.loads_exact(b'{"a": "' + b"x" * 100_000 + b'"}')
print("orjson" in sys.modules, end=" ")
for _ in range(21):
    exact_json.loads_numberless(b'{"a": "' + b"x" * 100_000 + b'"}')
print("orjson" in sys.modules)
"""


def test_orjson_is_imported_once_enough_has_been_parsed_to_pay_for_it() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True)
    assert done.stdout == "False True\n", done.stderr


def test_a_statement_reads_the_same_under_both_parsers(parser: str) -> None:
    # a process parses with json first and orjson later: a signed statement that repeats its
    # subject (before and after the predicate, escaped) must name the same image under both
    from affidavit.attestations.statement import parse_statement

    subject = '{"name":"r","digest":{"sha256":"%s"}}'
    payload = (
        '{"_type":"https://in-toto.io/Statement/v1","subject":[' + subject % ("a" * 64) + "],"
        '"predicateType":"t","predicate":{"subject":[' + subject % ("b" * 64) + "]},"
        '"s\\u0075bject":[' + subject % ("c" * 64) + "]}"
    ).encode()
    statement = parse_statement(payload)
    assert statement.subject_digests() == {"sha256:" + "c" * 64}
    assert statement.predicate == json.loads(payload)["predicate"]
