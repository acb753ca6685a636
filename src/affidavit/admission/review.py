"""AdmissionReview v1: the wire types, strict parsing, and the response the apiserver expects.

The kube-apiserver treats a webhook's 500 as "the webhook is broken", and with failurePolicy
Fail that blocks every deploy with an unhelpful message. So a malformed review never raises out
of here as anything but ``MalformedReview``, which says which field is wrong; the app answers it
with a denial that names the field when there is a uid to answer, and with a 400 otherwise.
"""

from __future__ import annotations

import base64
import json
import re
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


#: Deeper JSON than this is refused before any code walks it (Pod specs nest ~15 levels).
MAX_DEPTH = 100

# A \uD800-\uDFFF escape: the only way a JSON text yields a lone surrogate, which no UTF-8
# encoder (digests, the ledger, registry requests, the response) accepts.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]", re.ASCII)


_SURROGATE_TEXT = "contains a lone UTF-16 surrogate, which is not Unicode text"


class _Repeated(dict[str, Any]):
    """A JSON object in which ``keys`` appeared more than once (the last value kept)."""

    repeated: tuple[str, ...] = ()


class _NoRepeats:
    """An ``object_pairs_hook`` decoding objects as ``json`` does, but marking those in which a
    key repeats: the webhook must never judge one reading of a body that the apiserver (or the
    answer's uid) reads another way."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        repeated: list[str] = []
        for key, value in pairs:
            if key in out:
                repeated.append(key)
            out[key] = value
        if not repeated:
            return out
        self.seen = True
        marked = _Repeated(out)
        marked.repeated = tuple(repeated)
        return marked


def _first_repeat(doc: Any) -> str | None:
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Repeated):
            return f"{path}.{node.repeated[0]}" if path else node.repeated[0]
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path else k) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
    return None


def _walk(doc: Any, check_text: bool) -> str | None:
    """Name the first problem a decoded body has (too deep, a lone surrogate), or None."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"the body nests deeper than {MAX_DEPTH} levels (at {path or 'the top'})"
        if isinstance(node, dict):
            for key, value in node.items():
                if check_text and _lone_surrogate(key):
                    return f"a key in {path or 'the top object'} contains a lone UTF-16 surrogate"
                stack.append((value, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))
        elif check_text and isinstance(node, str) and _lone_surrogate(node):
            return f"{path} {_SURROGATE_TEXT}"
    return None


def _lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_review(body: bytes | str) -> ParsedRequest:
    """Parse and check an AdmissionReview; raise ``MalformedReview`` naming the bad field.

    Refused before anything reads a field: a repeated key anywhere (the apiserver never sends
    one; answered without a uid when ``uid`` or ``request`` repeats, since which one to answer
    is the ambiguity), nesting deeper than ``MAX_DEPTH``, and lone surrogates in any string.
    """
    hook = _NoRepeats()
    try:
        doc = json.loads(body, object_pairs_hook=hook)
    except RecursionError:
        raise MalformedReview(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedReview(f"the body is not JSON ({e})") from e
    if not isinstance(doc, dict):
        raise MalformedReview("the body is not a JSON object")
    request = doc.get("request")
    if isinstance(doc, _Repeated) and "request" in doc.repeated:
        raise MalformedReview("request appears more than once")
    if isinstance(request, _Repeated) and "uid" in request.repeated:
        raise MalformedReview("request.uid appears more than once")
    uid = _str(request.get("uid")) if isinstance(request, dict) else None
    if uid and _lone_surrogate(uid):
        raise MalformedReview(f"request.uid {_SURROGATE_TEXT}")
    uid = uid or None
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    check_text = _SURROGATE_ESCAPE.search(raw) is not None
    # Each level opens a bracket: with fewer brackets than MAX_DEPTH, only text needs a walk.
    if check_text or raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:
        problem = _walk(doc, check_text=check_text)
        if problem is not None:
            raise MalformedReview(problem, uid=uid)
    repeat = _first_repeat(doc) if hook.seen else None
    if repeat is not None:
        raise MalformedReview(f"{repeat} appears more than once", uid=uid)
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
