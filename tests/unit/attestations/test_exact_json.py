"""``loads_exact``: the fast JSON parse of verified payloads returns exactly what ``json.loads``
returns, and raises what it raises, on the inputs where orjson alone would differ (integers past
64 bits, NaN, lone surrogates, UTF-16 text, repeated keys, invalid JSON)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator

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


# -- msgspec: the envelope's and the statement's fast decodes -----------------------------------
# Each decodes only the fields it knows and keeps the predicate as its JSON text; where it
# decodes, the result is what the exact path (``json``) makes; where it does not, it refuses
# (None) and the exact path decides. The cases are the ones where parsers differ.


@pytest.fixture
def msgspec_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """msgspec's decoders in use (as once a process has verified enough to pay for them)."""
    from affidavit.attestations import documents

    monkeypatch.setattr(exact_json, "_documents", documents)


_S = '{"name":"r","digest":{"sha256":"%s"}}' % ("a" * 64)
_ENVELOPE_TAKEN = [
    b'{"payload":"QUJD","payloadType":"t","signatures":[{"sig":"QQ=="}]}',
    b'{"payload":"QUJD","payloadType":"t","signatures":[{"keyid":"k","sig":"QQ=="}]}',
    b'{"payload":"eA==","payload":"QUJD","payloadType":"t","signatures":[{"sig":"QQ=="}]}',
    b' {"payload" : "QUJD" ,"payloadType":"t","signatures":[{"sig":"QQ=="}]}\n',
]
_ENVELOPE_LEFT = [  # the exact path decides each (some accept, some refuse)
    # an escape or a non-ASCII byte anywhere: the payload's text is not its JSON bytes
    b'{"\\u0070ayload":"QUJD","payloadType":"t","signatures":[{"sig":"QQ=="}]}',
    b' {"payload" : "QUJ\\u0044" ,"payloadType":"t\\u00e9\\ud83d\\ude00","signatures":[{"sig":"QQ=="}]}\n',
    '{"payload":"QUJD","payloadType":"caf\u00e9","signatures":[{"sig":"QQ=="}]}'.encode(),
    b'{"payload":1,"payloadType":"t","signatures":[{"sig":"QQ=="}]}',
    b'{"payload":"QUJD","payloadType":"\\ud800","signatures":[{"sig":"QQ=="}]}',
    b'\xef\xbb\xbf{"payload":"QUJD","payloadType":"t","signatures":[{"sig":"QQ=="}]}',
    '{"payload":"QUJD","payloadType":"t","signatures":[{"sig":"QQ=="}]}'.encode("utf-16"),
    b'{"payload":"QUJD","payloadType":"\xed\xa0\x80","signatures":[{"sig":"QQ=="}]}',
    b'{"payload":"QUJD","payloadType":"\xff","signatures":[{"sig":"QQ=="}]}',
    '{"payload":"QUJ\u00e9","payloadType":"t","signatures":[{"sig":"QQ=="}]}'.encode(),
    b'{"payload":"QUJD","payloadType":"t","signatures":[]}',
    b'{"payload":"QUJD","payloadType":"t","signatures":[{"sig":"QQ==","keyid":null}]}',
    b'{"payload":"QUJD","payloadType":"t","signatures":[{"sig":"QQ=="}],"x":1}',
    b'{"payload":"QUJD","payloadType":1,"signatures":[{"sig":"QQ=="}]}',
    b'{"payload":"QUJD","payloadType":"t","signatures":[{"sig":"QQ=="},]}',
    b'[{"payload":"QUJD"}]',
    b'{"payload":"QUJD","payloadType":"t","signatures":[{"sig":"QQ=="}]} x',
]


def _envelope_exact(data: bytes) -> object:
    from affidavit.attestations.dsse import envelope_from_document
    from affidavit.errors import VerificationError

    try:
        envelope = envelope_from_document(json.loads(data))
    except (ValueError, VerificationError) as e:
        return type(e)
    return (envelope.payload, envelope.payload_type, envelope.signatures)


@pytest.mark.parametrize("data", _ENVELOPE_TAKEN + _ENVELOPE_LEFT)
def test_the_envelope_decode_makes_what_json_makes_or_refuses(
    data: bytes, msgspec_loaded: None
) -> None:
    from affidavit.attestations.dsse import _decode_envelope

    fast = _decode_envelope(data)
    assert (fast is not None) == (data in _ENVELOPE_TAKEN)  # the fast path is the one taken
    if fast is not None:
        assert (fast.payload, fast.payload_type, fast.signatures) == _envelope_exact(data)


# -- the skim: an envelope's payload found by quotes, the rest decoded by msgspec ---------------
# ``_skim_envelope`` takes the text after the first ``"payload"`` out without reading it as JSON;
# what it makes must be what ``json`` makes, and where it cannot be sure it must leave the
# envelope to msgspec (None). The cases are the ones where the text taken out is not the payload.

_SIG = '"signatures":[{"sig":"QQ=="}]'
_SKIMMED = [  # the skim decides these
    b'{"payload":"QUJD","payloadType":"t",' + _SIG.encode() + b"}",
    b'{"payloadType":"t",' + _SIG.encode() + b',"payload":"QUJD"}',  # the payload last
    b' {"payload" : "QUJD" ,"payloadType":"t",' + _SIG.encode() + b"}\n",
    b'{"payload":"-_-_","payloadType":"t",' + _SIG.encode() + b"}",  # URL-safe
    b'{"payload":"QUI","payloadType":"t",' + _SIG.encode() + b"}",  # unpadded
    b'{"payload":"","payloadType":"t",' + _SIG.encode() + b"}",
]
_NOT_SKIMMED = [  # msgspec or the exact path decides these (some accept, some refuse)
    # a repeated key: the first value is taken out, json takes the last
    b'{"payload":"eA==","payload":"QUJD","payloadType":"t",' + _SIG.encode() + b"}",
    # the first "payload" a value: the key after it is taken out
    b'{"payloadType":"payload","payload":"QUJD",' + _SIG.encode() + b"}",
    b'{"payloadType":"t","signatures":[{"keyid":"payload","sig":"QQ=="}],"payload":"QUJD"}',
    # the text after "payload" is not a string: the escape put there is no valid JSON
    b'{"a":"b"payload"c":"QUJD","payload":"QUJD","payloadType":"t",' + _SIG.encode() + b"}",
    b'["payload" ,"QUJD"]',
    b'{"payload":1,"x":"QUJD","payloadType":"t",' + _SIG.encode() + b"}",
    # not base64, or holding what a JSON string may not hold raw
    b'{"payload":"QU\x01JD","payloadType":"t",' + _SIG.encode() + b"}",
    b'{"payload":"QU JD","payloadType":"t",' + _SIG.encode() + b"}",
    # not ASCII, in the text taken out or in the rest (which json would read, or refuse)
    '{"payload":"QUJ\u00e9","payloadType":"t",'.encode() + _SIG.encode() + b"}",
    '{"payload":"QUJD","payloadType":"caf\u00e9",'.encode() + _SIG.encode() + b"}",
    b'{"payload":"QUJD","payloadType":"\xed\xa0\x80",' + _SIG.encode() + b"}",
    b'{"payload":"QUJD","payloadType":"\xff",' + _SIG.encode() + b"}",
    b'{"payload":"QUJD" "x","payloadType":"t",' + _SIG.encode() + b"}",
    b'{"payload":"QUJD","payloadType":"t","signatures":[]}',
    b'{"payload":"QUJD","payloadType":"t",' + _SIG.encode() + b',"x":1}',
    b'{"payload":"QUJD"',
    b'{"payload":"QUJD',
    b'{"payload"',
]


@pytest.mark.parametrize("data", _SKIMMED + _NOT_SKIMMED)
def test_the_skim_makes_what_json_makes_or_leaves_the_envelope(
    data: bytes, msgspec_loaded: None
) -> None:
    from affidavit.attestations.dsse import _decode_envelope, _skim_envelope, b64decode

    skimmed = _skim_envelope(data)
    assert (skimmed is not None) == (data in _SKIMMED)
    fast = _decode_envelope(data)
    if fast is not None:  # skimmed or decoded by msgspec: what json makes
        assert (fast.payload, fast.payload_type, fast.signatures) == _envelope_exact(data)
    if skimmed is not None:
        assert skimmed._payload == b64decode(skimmed.payload)  # decoded, as payload_bytes would


def test_the_skim_agrees_with_json_on_thousands_of_mangled_envelopes(msgspec_loaded: None) -> None:
    """Random edits of real envelopes (quotes, backslashes, brackets, keys, base64 characters,
    bytes that are not ASCII), seeded: wherever the fast decode takes one, json makes the same
    envelope."""
    import random

    from affidavit.attestations.dsse import _decode_envelope, _skim_envelope, b64decode

    bases = [
        b'{"payload":"eyJhIjoxfQ==","payloadType":"application/vnd.in-toto+json",'
        b'"signatures":[{"keyid":"k","sig":"MEUCIQ=="}]}',
        b'{"payloadType":"t","signatures":[{"sig":"QQ=="},{"keyid":"payload","sig":"Qg=="}],'
        b'"payload":"cGF5bG9hZA=="}',
    ]
    pieces = [
        b'"',
        b"\\",
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b" ",
        b"A",
        b"=",
        b"-",
        b'"payload"',
        b'"payload":"QUJD"',
        b'"x":"y"',
        b"\x01",
        b"1",
        # not ASCII: the skim checks only the text it does not take out (what it takes out is
        # ASCII if strict base64 decodes it), json reads or refuses the rest
        "\u00e9".encode(),
        b"\xff",
        b"\xed\xa0\x80",  # an encoded surrogate: json reads it, msgspec refuses it
        b"\x00",
    ]
    members = [b'"payload":"QUJD",', b'"payload":"eA==",', b'"payloadType":"payload",', b'"x":1,']
    rng = random.Random(11)
    skimmed = taken = 0
    for _ in range(4000):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data) + 1)
            if rng.random() < 0.3:  # a member added where members go (a repeated key, say)
                at = rng.choice([i + 1 for i, c in enumerate(data) if c in b"{,"] or [0])
                data[at:at] = rng.choice(members)
            elif rng.random() < 0.4 and at < len(data):
                del data[at : at + rng.randint(1, 4)]
            else:
                data[at:at] = rng.choice(pieces)
        text = bytes(data)
        fast = _decode_envelope(text)
        if fast is None:
            continue
        taken += 1
        assert (fast.payload, fast.payload_type, fast.signatures) == _envelope_exact(text), text
        skim = _skim_envelope(text)
        if skim is not None:
            skimmed += 1
            assert (skim.payload, skim.payload_type, skim.signatures) == _envelope_exact(text)
            assert skim._payload == b64decode(skim.payload), text
    assert skimmed > 200 and taken > skimmed  # both paths were exercised


def _statement(predicate: str, *, extra: str = "", prefix: str = "") -> bytes:
    return (
        prefix + '{"_type":"https://in-toto.io/Statement/v1","subject":[' + _S + "],"
        '"predicateType":"t","predicate":' + predicate + extra + "}"
    ).encode("utf-8", "surrogatepass")


_DEEP = "[" * 200 + "]" * 200
_STATEMENT_TAKEN = [
    _statement('{"a":[1,2.5,-0,1e400,true,null],"b":{"c":"d"}}'),
    _statement('{"a":1,"a":2,"\\u0061":3}'),  # repeated and escaped keys: the last counts
    _statement('{"a":1}', extra=',"predicate":{"b":2}'),  # a repeated predicate: the last
    _statement('{"a":1}', extra=',"\\u0070redicate":{"b":2}'),
    _statement('{"big":123456789012345678901234567890,"neg":-18446744073709551617}'),
    _statement('{"n":' + "7" * 4300 + "}"),  # at the interpreter's digit limit
    _statement('{"s":"caf\u00e9 \\u00e9 \\ud83d\\ude00 \\"\\\\\\/\\b\\f\\n\\r\\t"}'),
    _statement('{"s":"\ud800"}'),  # an encoded surrogate: json (surrogatepass) reads it
    _statement(' \n{"deep":' + _DEEP + "}\t"),
]
_STATEMENT_LEFT = [
    # digits in a string have no limit, but the check does not tell strings from numbers
    _statement('{"s":"' + "7" * 5000 + '"}'),
    _statement('{"x":NaN}'),  # json reads NaN; msgspec refuses: the exact path accepts
    _statement('{"s":"\\ud800"}'),  # a lone surrogate escape: likewise
    _statement('{"a":1}', prefix="\ufeff"),  # json.loads of bytes skips a byte-order mark
    _statement('{"n":' + "7" * 4301 + "}"),  # past the digit limit: json refuses
    _statement('{"s":"\xff"}').replace(b"\xc3\xbf", b"\xff"),  # not UTF-8: json refuses
    _statement('{"s":"a\x01b"}'),  # a raw control character: both refuse
    _statement('{"s":"\\x"}'),  # an invalid escape: both refuse
    _statement('{"a":[1,]}'),
    _statement("[1]"),  # a predicate that is not an object
    _statement("{}", extra=',"extra":1'),
    _statement("{}").replace(b"Statement/v1", b"Statement/v2"),
    _statement("{" + '"d":' * 0 + '"deep":' + "[" * 5000 + "]" * 5000 + "}"),
]


def _statement_exact(payload: bytes) -> object:
    from affidavit.attestations import statement as module
    from affidavit.errors import VerificationError

    saved = module._decode_statement
    module._decode_statement = lambda payload: None
    try:
        found = module.parse_statement(payload)
    except VerificationError as e:
        return e.message
    finally:
        module._decode_statement = saved
    return (found.type, found.subject, found.predicate_type, json.dumps(found.predicate))


@pytest.mark.parametrize("payload", _STATEMENT_TAKEN + _STATEMENT_LEFT)
def test_the_statement_decode_makes_what_json_makes_or_refuses(
    payload: bytes, msgspec_loaded: None
) -> None:
    from affidavit.attestations.statement import _decode_statement, parse_statement

    fast = _decode_statement(payload)
    assert (fast is not None) == (payload in _STATEMENT_TAKEN)  # the fast path is the one taken
    got = parse_statement(payload) if fast is not None else None
    if got is not None:
        assert got.predicate_json is not None  # kept as text, read on first access
        found = (got.type, got.subject, got.predicate_type, json.dumps(got.predicate))
        assert found == _statement_exact(payload)
        assert json.dumps(got.predicate) == json.dumps(json.loads(payload)["predicate"])


def test_a_predicate_read_deeper_in_the_stack_than_it_was_checked_still_parses(
    msgspec_loaded: None,
) -> None:
    # the check counted the nesting against the recursion limit from a shallow stack; the first
    # read comes from a deep one, where json alone would run out: it parses all the same, and
    # the limit is as it was after
    import sys

    from affidavit.attestations.statement import parse_statement

    limit = sys.getrecursionlimit()
    depth = limit - 150
    payload = _statement('{"deep":' + "[" * depth + "]" * depth + "}")
    statement = parse_statement(payload)
    assert statement.predicate_json is not None

    def deeper(n: int, read: Callable[[], object]) -> object:
        return deeper(n - 1, read) if n else read()

    with pytest.raises(RecursionError):  # json alone, from that deep
        deeper(300, lambda: json.loads(bytes(statement.predicate_json or b"")))
    predicate = deeper(300, lambda: statement.predicate)
    assert sys.getrecursionlimit() == limit
    assert json.dumps(predicate) == json.dumps(json.loads(payload)["predicate"])


_MSGSPEC_PROBE = """
import sys
from affidavit.attestations.statement import parse_statement
payload = sys.stdin.buffer.read()
parse_statement(payload)
print("msgspec" in sys.modules, end=" ")
for _ in range(30):
    parse_statement(payload)
print("msgspec" in sys.modules, parse_statement(payload).predicate_json is not None)
"""


def test_msgspec_is_imported_once_enough_has_been_verified_to_pay_for_it() -> None:
    payload = _statement(
        '{"changes":[' + ",".join(f'{{"commit":"{i:040d}"}}' for i in range(400)) + "]}"
    )
    done = subprocess.run(
        [sys.executable, "-c", _MSGSPEC_PROBE], input=payload, capture_output=True
    )
    assert done.stdout == b"False True True\n", done.stderr
