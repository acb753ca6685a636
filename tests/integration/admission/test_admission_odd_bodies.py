"""Odd bodies over HTTPS, on a real `affidavit webhook serve`: a repeated uid, a lone surrogate in
an image or a username (or the uid), and deep nesting each get a specific refusal, never an
internal error or a 5xx."""

from __future__ import annotations

import json

from admission_support import Images, WebhookProcess, review


def _body(images: Images) -> str:
    return json.dumps(review(images.good, uid="u-odd"))


def test_a_repeated_uid_is_a_400_naming_it(webhook: WebhookProcess, images: Images) -> None:
    body = _body(images).replace('"uid": "u-odd"', '"uid": "u-odd", "uid": "u-other"')
    r = webhook.validate(body.encode())
    assert r.status_code == 400
    assert r.json() == {"error": "malformed AdmissionReview: request.uid appears more than once"}


def test_a_lone_surrogate_in_an_image_is_a_denial_naming_the_field(
    webhook: WebhookProcess, images: Images
) -> None:
    body = _body(images).replace(images.good, images.good + "\\ud800")
    r = webhook.validate(body.encode())
    assert r.status_code == 200
    assert r.json()["response"] == {
        "uid": "u-odd",
        "allowed": False,
        "status": {
            "code": 400,
            "message": "malformed AdmissionReview: request.object.spec.template.spec."
            "containers[0].image contains a lone UTF-16 surrogate, which is not Unicode text",
            "reason": "Forbidden",
        },
    }


def test_a_lone_surrogate_in_the_username_and_the_uid_is_a_400(
    webhook: WebhookProcess, images: Images
) -> None:
    body = _body(images).replace('"alice"', '"al\\udfffice"')
    response = webhook.validate(body.encode()).json()["response"]
    assert response["status"]["message"] == (
        "malformed AdmissionReview: request.userInfo.username contains a lone UTF-16 "
        "surrogate, which is not Unicode text"
    )
    r = webhook.validate(body.replace('"u-odd"', '"u-\\ud800"').encode())
    assert r.status_code == 400
    assert r.json() == {
        "error": "malformed AdmissionReview: request.uid contains a lone UTF-16 surrogate, "
        "which is not Unicode text"
    }


def test_deep_nesting_is_refused_by_depth(webhook: WebhookProcess, images: Images) -> None:
    body = _body(images).replace('"spec": {"template"', '"x": @, "spec": {"template"', 1)
    r = webhook.validate(body.replace("@", "[" * 500 + "]" * 500).encode())
    assert r.status_code == 200
    message = r.json()["response"]["status"]["message"]
    assert message.startswith(
        "malformed AdmissionReview: the body nests deeper than 100 levels (at request.object.x["
    )
    r = webhook.validate(body.replace("@", "[" * 1500 + "]" * 1500).encode())
    assert r.status_code == 400
    assert r.json() == {"error": "malformed AdmissionReview: the body nests deeper than 100 levels"}
