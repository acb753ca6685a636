"""The chain scan's decode gives ``json.loads``'s values or refuses (and the exact path decides).

The scan decodes each stored decision with msgspec: the indexed fields as strings, the values a
reader counts as raw JSON bytes. Its verdict on a row rests on those strings equalling what
``json.loads`` reads, so every text here is either refused or read exactly as ``json`` reads
it, including the texts where parsers commonly differ: escaped and duplicate keys, escapes in
strings, numbers past 64 bits, NaN, lone surrogates, a byte-order mark.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from affidavit.ledger.decode import COLUMNS, DecodeError, decoder, images_of_raw, raw_value
from affidavit.ledger.records import images_of

FIELDS = (
    ',"outcome":"allowed","namespace":"ns","kind":"Pod","name":"p","time":"2026-01-01T00:00:00Z"'
)
RAW = ("images", "region", "snapshot")

AGREE = [
    '{"id":"a"' + FIELDS + "}",
    '{"id":"a","\\u0069d":"b"' + FIELDS + "}",  # an escaped key is the key: the last one counts
    '{"\\u0069d":"b"' + FIELDS + "}",
    '{"id":"a"' + FIELDS + ',"region":"x","region":"y"}',  # duplicate keys: the last one counts
    '{"id":"a"' + FIELDS + ',"region":"x","\\u0072egion":["y"]}',
    '{"id":"a\\u0000\\"\\\\\\/\\ud83d\\ude00"' + FIELDS + "}",
    '{"id":"a"' + FIELDS + ',"images":[{"ref":"r","digest":123456789012345678901234567890}]}',
    '{"id":"a"' + FIELDS + ',"images":[{"ref":"r","digest":1e999}],"snapshot":null}',
    ' {"id":"a"' + FIELDS + ',"images":[{"ref":"r"},{"ref":5},"x",{"ref":"q","digest":"d"}]} ',
    '{"id":"a"' + FIELDS + ',"images":{"ref":"r"},"region":{"a":[1,2.5,true,null]}}',
    '{"id":"é"' + FIELDS + ',"snapshot":{"caller":{"authenticated":true}},"other":[1,{"z":2}]}',
]

REFUSED = [
    '{"id":"a"' + FIELDS + ',"images":NaN}',  # json reads NaN; the exact path decides
    '{"id":"\\ud800"' + FIELDS + "}",  # a lone surrogate
    '{"id":"a"' + FIELDS + ',"region":"\\udc00"}',
    '\ufeff{"id":"a"' + FIELDS + "}",  # json.loads of bytes skips a byte-order mark
    '{"id":5' + FIELDS + "}",  # a number where the column's text is expected
    '{"id":null' + FIELDS + "}",
    '{"outcome":"allowed"}',  # fields missing
    '["id","a"]',
    '{"id":"a"' + FIELDS + ',"images":[1,]}',
    '{"id":"a"' + FIELDS + "} x",
]


def _decode(text: str) -> Any:
    return decoder(RAW)(text.encode())


@pytest.mark.parametrize("text", AGREE)
def test_decoded_values_are_json_loads_values(text: str) -> None:
    expected = json.loads(text.encode())
    got = _decode(text)
    for name in COLUMNS:
        assert getattr(got, name) == expected[name], name
    for name in RAW:
        assert raw_value(getattr(got, name)) == expected.get(name), name
        assert repr(raw_value(getattr(got, name))) == repr(expected.get(name)), name
    images = images_of_raw(bytes(got.images))
    assert images == [tuple(i) for i in images_of(expected)]


@pytest.mark.parametrize("text", REFUSED)
def test_what_it_does_not_read_exactly_it_refuses(text: str) -> None:
    with pytest.raises(DecodeError):
        _decode(text)


def test_a_raw_value_is_its_exact_bytes() -> None:
    got = _decode('{"id":"a"' + FIELDS + ',"region" : [ "x" , 1 ]}')
    assert bytes(got.region) == b'[ "x" , 1 ]'
    assert bytes(got.snapshot) == b"null"  # absent reads as null
