"""Who asked for an AccountabilityException, as the API server authenticated them.

An exception's ``owner`` and ``approvers`` are what its author typed: anyone allowed to create
exceptions in a namespace can name someone else as owner and anyone at all as approver, and the
decision that the exception admitted records those words as the evidence. So the mutating
webhook writes the one name nobody types: on every CREATE, and every UPDATE that changes the
spec, the annotation ``affidavit.dev/requested-by`` becomes the request's ``userInfo.username``
(what the API server authenticated). An UPDATE that leaves the spec alone (a label, an edit of
the annotation itself) keeps the value it had, or removes one that was added. The operator
copies it into the policy index and every decision made under the exception records it.

Beside it, ``affidavit.dev/requested-by-groups`` holds the groups the API server authenticated
that writer in (a JSON array), by the same rules: under ``separateRequester`` the webhook asks
the API server whether the requester may act as the deployer (impersonate it, or mint its
token), and RBAC is mostly granted to groups.

An exception written while this webhook did not run (before an upgrade, or a webhook that
``failurePolicy: Ignore`` skipped) has no such annotation, and its decisions say so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from affidavit.admission.review import ParsedRequest
from affidavit.names import GROUP
from affidavit.names import REQUESTED_BY_ANNOTATION as REQUESTED_BY
from affidavit.names import REQUESTED_BY_GROUPS_ANNOTATION as REQUESTED_GROUPS
from affidavit.policy.model import KIND_EXCEPTION


def _pointer(annotation: str) -> str:
    """``annotation``'s JSON Pointer (RFC 6901: "~" is written "~0", "/" is written "~1")."""
    return "/metadata/annotations/" + annotation.replace("~", "~0").replace("/", "~1")


def is_exception(req: ParsedRequest) -> bool:
    """Whether the review is about an AccountabilityException itself (not a subresource)."""
    return (req.group, req.kind, req.sub_resource) == (GROUP, KIND_EXCEPTION, "")


def stamp_patch(req: ParsedRequest) -> list[dict[str, Any]]:
    """The JSON Patch that leaves ``REQUESTED_BY`` (and ``REQUESTED_GROUPS``) naming who last
    wrote the spec."""
    if req.operation not in ("CREATE", "UPDATE") or req.object is None:
        return []
    annotations = _annotations(req.object)
    wanted: dict[str, str | None]
    if req.operation == "CREATE" or req.old_object is None or _spec_changed(req):
        wanted = {REQUESTED_BY: req.user, REQUESTED_GROUPS: json.dumps(list(req.groups))}
    else:
        old = _annotations(req.old_object)
        wanted = {key: _text(old.get(key)) for key in (REQUESTED_BY, REQUESTED_GROUPS)}
    changes = {k: v for k, v in wanted.items() if annotations.get(k) != v}
    if not changes:
        return []
    meta = req.object.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("annotations"), Mapping):
        added = {k: v for k, v in wanted.items() if v is not None}
        return [{"op": "add", "path": "/metadata/annotations", "value": added}] if added else []
    return [
        {"op": "remove", "path": _pointer(key)}
        if value is None
        else {"op": "add", "path": _pointer(key), "value": value}  # "add" replaces a value
        for key, value in changes.items()
        if value is not None or key in annotations
    ]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _spec_changed(req: ParsedRequest) -> bool:
    assert req.object is not None and req.old_object is not None
    return req.object.get("spec") != req.old_object.get("spec")


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}
