"""Odd JSON bodies get a specific answer from parse_review, never an internal error: a key that
repeats (the uid the answer names must be the uid that was judged), a lone UTF-16 surrogate
(no encoder downstream accepts one), and nesting deeper than the webhook walks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from affidavit.admission.review import MAX_DEPTH, MalformedReview, parse_review

_HEAD = '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":'
_KIND = '"kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE"'


def _request(obj: Any = None, *, user: str = "alice", image: str = "reg.example/a:1") -> str:
    if obj is None:
        obj = {
            "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
        }
    return (
        f'{{"uid":"u-1",{_KIND},"userInfo":{{"username":{json.dumps(user)}}},'
        f'"object":{json.dumps(obj)}}}'
    )


def _refusal(body: str | bytes) -> MalformedReview:
    with pytest.raises(MalformedReview) as e:
        parse_review(body)
    return e.value


def test_a_repeated_uid_is_refused_without_answering_either_uid() -> None:
    body = _HEAD + '{"uid":"first","uid":"second",' + _KIND + ',"object":{}}}'
    e = _refusal(body)
    assert (e.uid, e.message) == (
        None,
        "malformed AdmissionReview: request.uid appears more than once",
    )


def test_a_repeated_request_is_refused_without_a_uid() -> None:
    body = _HEAD + _request() + ',"request":' + _request() + "}"
    e = _refusal(body)
    assert (e.uid, e.message) == (None, "malformed AdmissionReview: request appears more than once")


def test_a_repeated_key_inside_the_object_is_refused_naming_it() -> None:
    body = _HEAD + _request().replace('"image": "reg.example/a:1"', '"image": "a", "image": "b"')
    e = _refusal(body + "}")
    assert (e.uid, e.message) == (
        "u-1",
        "malformed AdmissionReview: request.object.spec.template.spec.containers[0].image "
        "appears more than once",
    )


@pytest.mark.parametrize(
    ("body", "uid", "message"),
    [
        (
            _HEAD + _request(image="reg.example/a\\ud800:1") + "}",
            "u-1",
            "request.object.spec.template.spec.containers[0].image contains a lone UTF-16 "
            "surrogate, which is not Unicode text",
        ),
        (
            _HEAD + _request(user="al\\udfffice") + "}",
            "u-1",
            "request.userInfo.username contains a lone UTF-16 surrogate, which is not Unicode text",
        ),
        (
            _HEAD + _request().replace('"uid":"u-1"', '"uid":"u-\\ud800"') + "}",
            None,
            "request.uid contains a lone UTF-16 surrogate, which is not Unicode text",
        ),
    ],
)
def test_a_lone_surrogate_is_refused_naming_the_field(
    body: str, uid: str | None, message: str
) -> None:
    body = body.replace("\\\\u", "\\u")  # json.dumps escaped the backslash of the escape
    e = _refusal(body.encode())
    assert (e.uid, e.message) == (uid, f"malformed AdmissionReview: {message}")


def test_a_surrogate_pair_is_text() -> None:
    got = parse_review((_HEAD + _request(user="\\ud83d\\ude00") + "}").replace("\\\\u", "\\u"))
    assert got.user == "\N{GRINNING FACE}"


def test_nesting_past_the_limit_is_refused_with_the_uid() -> None:
    deep: Any = "x"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    e = _refusal(_HEAD + _request({"metadata": {"name": "w"}, "spec": {"x": deep}}) + "}")
    assert e.uid == "u-1"
    assert e.message.startswith(
        f"malformed AdmissionReview: the body nests deeper than {MAX_DEPTH} levels "
        "(at request.object.spec.x[0][0]"
    )


def test_nesting_past_the_json_decoder_is_refused_without_a_uid() -> None:
    body = _HEAD + _request({"metadata": {}, "spec": {"x": "@"}}) + "}"
    e = _refusal(body.replace('"@"', "[" * 100_000 + "]" * 100_000))
    assert (e.uid, e.message) == (
        None,
        f"malformed AdmissionReview: the body nests deeper than {MAX_DEPTH} levels",
    )


def test_an_ordinary_pod_spec_is_well_inside_the_depth_limit() -> None:
    got = parse_review(_HEAD + _request() + "}")
    assert got.uid == "u-1"
