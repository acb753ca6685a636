"""AdmissionReview v1: the wire types, strict parsing, and the response the apiserver expects.

The kube-apiserver treats a webhook's 500 as "the webhook is broken", and with failurePolicy
Fail that blocks every deploy with an unhelpful message. So a malformed review never raises out
of here as anything but ``MalformedReview``, which says which field is wrong; the app answers it
with a denial that names the field when there is a uid to answer, and with a 400 otherwise.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

from affidavit.errors import InputError

API_VERSION = "admission.k8s.io/v1"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class AdmissionRequest(TypedDict):
    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    userInfo: UserInfo
    subResource: NotRequired[str]
    requestKind: NotRequired[GroupVersionKind]
    requestResource: NotRequired[GroupVersionResource]
    name: NotRequired[str]
    namespace: NotRequired[str]
    object: NotRequired[dict[str, Any] | None]
    oldObject: NotRequired[dict[str, Any] | None]
    dryRun: NotRequired[bool]
    options: NotRequired[dict[str, Any] | None]


class Status(TypedDict, total=False):
    code: int
    message: str
    reason: str


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]  # base64 of a JSON Patch (RFC 6902)


class AdmissionReview(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: NotRequired[AdmissionRequest]
    response: NotRequired[AdmissionResponse]


class MalformedReview(InputError):
    """The review cannot be judged; ``uid`` is set when there is a request to answer."""

    def __init__(self, detail: str, *, uid: str | None = None) -> None:
        super().__init__(
            f"malformed AdmissionReview: {detail}",
            hint="the kube-apiserver sends admission.k8s.io/v1 AdmissionReview objects",
        )
        self.uid = uid


@dataclass(frozen=True)
class ParsedRequest:
    """The parts of a request the webhook judges."""

    uid: str
    kind: str  # the object's kind, e.g. "Deployment"
    group: str
    operation: str
    namespace: str
    name: str
    user: str
    groups: tuple[str, ...]
    object: Mapping[str, Any] | None
    sub_resource: str = ""
    #: The object before an UPDATE (None for other operations, or when it is not an object).
    old_object: Mapping[str, Any] | None = None
    dry_run: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def parse_review(body: bytes | str) -> ParsedRequest:
    """Parse and check an AdmissionReview; raise ``MalformedReview`` naming the bad field."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedReview(f"the body is not JSON ({e})") from e
    if not isinstance(doc, dict):
        raise MalformedReview("the body is not a JSON object")
    request = doc.get("request")
    uid = _str(request.get("uid")) if isinstance(request, dict) else None
    if not uid:
        uid = None
    if doc.get("kind") != "AdmissionReview":
        raise MalformedReview(f"kind must be AdmissionReview, got {doc.get('kind')!r}", uid=uid)
    if doc.get("apiVersion") != API_VERSION:
        raise MalformedReview(
            f"apiVersion must be {API_VERSION}, got {doc.get('apiVersion')!r}", uid=uid
        )
    if not isinstance(request, dict):
        raise MalformedReview("request is missing")
    if uid is None:
        raise MalformedReview("request.uid is missing")
    return _parse_request(request, uid)


def _parse_request(request: Mapping[str, Any], uid: str) -> ParsedRequest:
    def bad(detail: str) -> MalformedReview:
        return MalformedReview(detail, uid=uid)

    kind = request.get("kind")
    if not isinstance(kind, dict) or not _str(kind.get("kind")):
        raise bad("request.kind.kind is missing")
    group = _str(kind.get("group"))
    if group is None:
        raise bad("request.kind.group is missing")
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise bad(f"request.operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    user_info = request.get("userInfo", {})
    if not isinstance(user_info, dict):
        raise bad("request.userInfo is not an object")
    groups = user_info.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise bad("request.userInfo.groups is not a list of strings")
    obj = request.get("object")
    if operation in ("CREATE", "UPDATE"):
        if obj is None:
            raise bad("request.object is missing")
        if not isinstance(obj, dict):
            raise bad("request.object is not an object")
    elif obj is not None and not isinstance(obj, dict):
        raise bad("request.object is not an object")
    metadata = (obj or {}).get("metadata", {})
    if not isinstance(metadata, dict):
        raise bad("request.object.metadata is not an object")
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise bad("request.object.metadata.labels is not a map of strings")
    name = (
        _str(request.get("name"))
        or _str(metadata.get("name"))
        or _str(metadata.get("generateName"))
        or ""
    )
    namespace = _str(request.get("namespace")) or _str(metadata.get("namespace")) or ""
    return ParsedRequest(
        uid=uid,
        kind=str(kind["kind"]),
        group=group,
        operation=str(operation),
        namespace=namespace,
        name=name,
        user=_str(user_info.get("username")) or "",
        groups=tuple(groups),
        object=obj,
        sub_resource=_str(request.get("subResource")) or "",
        old_object=old if isinstance(old := request.get("oldObject"), dict) else None,
        dry_run=request.get("dryRun") is True,
        labels=dict(labels),
    )


def review_response(
    uid: str,
    *,
    allowed: bool,
    message: str | None = None,
    code: int | None = None,
    warnings: Sequence[str] = (),
    audit_annotations: Mapping[str, str] | None = None,
    patch: Sequence[Mapping[str, Any]] = (),
) -> AdmissionReview:
    """The AdmissionReview the apiserver expects back for request ``uid``.

    ``patch``: JSON Patch operations, for a mutating webhook's answer (none: no change).
    """
    response: AdmissionResponse = {"uid": uid, "allowed": allowed}
    if message is not None or code is not None:
        status: Status = {"code": code if code is not None else (200 if allowed else 403)}
        if message is not None:
            status["message"] = message
        if not allowed:
            status["reason"] = "Forbidden"
        response["status"] = status
    if warnings:
        response["warnings"] = list(warnings)
    if audit_annotations:
        response["auditAnnotations"] = dict(audit_annotations)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(
            json.dumps(list(patch), separators=(",", ":")).encode()
        ).decode("ascii")
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
