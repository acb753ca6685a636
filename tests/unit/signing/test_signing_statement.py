"""in-toto Statement v1: deterministic bytes from make_statement, strict parse_statement."""

from __future__ import annotations

import json

import pytest

from affidavit.attestations.statement import (
    INTOTO_STATEMENT_V1,
    make_statement,
    parse_statement,
)
from affidavit.errors import InputError, VerificationError

DIGEST = "sha256:" + "ab" * 32
PT = "https://affidavit.dev/attestations/ai-provenance/v1"


def test_make_statement_is_deterministic_compact_and_sorted() -> None:
    a = make_statement("reg.example/app", DIGEST, PT, {"z": 1, "a": {"y": 2, "b": "ü"}})
    b = make_statement("reg.example/app", DIGEST, PT, {"a": {"b": "ü", "y": 2}, "z": 1})
    assert a == b
    assert (
        a
        == (
            '{"_type":"https://in-toto.io/Statement/v1","predicate":{"a":{"b":"ü","y":2},"z":1},'
            f'"predicateType":"{PT}","subject":[{{"digest":{{"sha256":"{"ab" * 32}"}},'
            '"name":"reg.example/app"}]}'
        ).encode()
    )


def test_round_trip() -> None:
    statement = parse_statement(make_statement("reg.example/app", DIGEST, PT, {"k": [1, 2]}))
    assert statement.type == INTOTO_STATEMENT_V1
    assert statement.predicate_type == PT
    assert statement.predicate == {"k": [1, 2]}
    assert statement.subject[0].name == "reg.example/app"
    assert statement.is_about(DIGEST)
    assert not statement.is_about("sha256:" + "cd" * 32)


@pytest.mark.parametrize(
    "digest",
    ["ab" * 32, "sha256:" + "AB" * 32, "sha512:" + "ab" * 64, "", "sha256:" + "ab" * 32 + "\n"],
)
def test_make_statement_rejects_bad_digests(digest: str) -> None:
    with pytest.raises(InputError) as info:
        make_statement("reg.example/app", digest, PT, {})
    assert info.value.message == (
        f"image digest {digest!r} is not of the form sha256:<64 lowercase hex>"
    )


def _doc(**changes: object) -> bytes:
    document = json.loads(make_statement("r/a", DIGEST, PT, {}))
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        (b"[1]", "a JSON list, not an object"),
        (
            _doc(_type="https://in-toto.io/Statement/v2"),
            "_type is 'https://in-toto.io/Statement/v2', expected 'https://in-toto.io/Statement/v1'",
        ),
        (_doc(subject=[]), "subject: List should have at least 1 item after validation, not 0"),
        (_doc(extra=1), "extra: Extra inputs are not permitted"),
        (_doc(predicate="x"), "predicate: Input should be a valid dictionary"),
        (
            _doc(subject=[{"name": "a", "digest": {"sha256": 1}, "x": 2}]),
            "subject.0.digest.sha256: Input should be a valid string; subject.0.x: Extra inputs "
            "are not permitted",
        ),
        (
            _doc(subject=["a"]),
            "subject.0: Input should be a valid dictionary or instance of Subject",
        ),
        (_doc(subject={"a": 1}), "subject: Input should be a valid list"),
        (_doc(predicateType=""), "predicateType: String should have at least 1 character"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON (it nests too deeply)"),
    ],
)
def test_parse_statement_rejects(payload: bytes, reason: str) -> None:
    with pytest.raises(VerificationError) as info:
        parse_statement(payload)
    assert info.value.message == "statement is not an in-toto Statement v1: " + reason


def test_parse_statement_accepts_cosign_v01() -> None:
    statement = parse_statement(_doc(_type="https://in-toto.io/Statement/v0.1"))
    assert statement.is_about(DIGEST)
