"""Strict AdmissionReview v1 parsing: what is accepted, and the exact message for each defect."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from affidavit.admission.review import MalformedReview, parse_review, review_response


def review(**request: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uid": "u-1",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "operation": "CREATE",
        "namespace": "shop",
        "userInfo": {"username": "alice", "groups": ["dev"]},
        "object": {"metadata": {"name": "web", "labels": {"team": "a"}}, "spec": {}},
    }
    base.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": base}


def test_parses_a_valid_review() -> None:
    got = parse_review(json.dumps(review()).encode())
    assert (got.uid, got.kind, got.group, got.operation) == ("u-1", "Deployment", "apps", "CREATE")
    assert (got.namespace, got.name, got.user, got.groups) == ("shop", "web", "alice", ("dev",))
    assert got.labels == {"team": "a"}


def test_generate_name_is_used_when_there_is_no_name() -> None:
    got = parse_review(json.dumps(review(object={"metadata": {"generateName": "web-"}})))
    assert got.name == "web-"


@pytest.mark.parametrize(
    ("body", "uid", "message"),
    [
        (b"{not json", None, "malformed AdmissionReview: the body is not JSON"),
        (b"[]", None, "malformed AdmissionReview: the body is not a JSON object"),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
            None,
            "malformed AdmissionReview: request is missing",
        ),
        (
            json.dumps(review(uid="")).encode(),
            None,
            "malformed AdmissionReview: request.uid is missing",
        ),
        (
            json.dumps({**review(), "apiVersion": "admission.k8s.io/v1beta1"}).encode(),
            "u-1",
            "malformed AdmissionReview: apiVersion must be admission.k8s.io/v1, got 'admission.k8s.io/v1beta1'",
        ),
        (
            json.dumps(review(operation="PATCH")).encode(),
            "u-1",
            "malformed AdmissionReview: request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got 'PATCH'",
        ),
        (
            json.dumps(review(object=None)).encode(),
            "u-1",
            "malformed AdmissionReview: request.object is missing",
        ),
        (
            json.dumps(review(kind={"group": "apps"})).encode(),
            "u-1",
            "malformed AdmissionReview: request.kind.kind is missing",
        ),
        (
            json.dumps(review(object={"metadata": {"labels": {"a": 1}}})).encode(),
            "u-1",
            "malformed AdmissionReview: request.object.metadata.labels is not a map of strings",
        ),
    ],
)
def test_malformed_reviews(body: bytes, uid: str | None, message: str) -> None:
    with pytest.raises(MalformedReview) as e:
        parse_review(body)
    assert e.value.message.startswith(message)
    assert e.value.uid == uid


def test_delete_needs_no_object() -> None:
    got = parse_review(json.dumps(review(operation="DELETE", object=None, name="web")))
    assert got.object is None and got.name == "web"


def test_response_shape() -> None:
    assert review_response(
        "u", allowed=False, message="no", warnings=["w"], audit_annotations={"a": "b"}
    ) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "u",
            "allowed": False,
            "status": {"code": 403, "message": "no", "reason": "Forbidden"},
            "warnings": ["w"],
            "auditAnnotations": {"a": "b"},
        },
    }
    assert review_response("u", allowed=True) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u", "allowed": True},
    }


def test_a_mutating_answer_carries_a_base64_json_patch() -> None:
    ops = [{"op": "replace", "path": "/spec/containers/0/image", "value": "r.example/a:1@sha256:x"}]
    response = review_response("u-1", allowed=True, patch=ops)["response"]
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == ops
    assert "patch" not in review_response("u-1", allowed=True)["response"]
