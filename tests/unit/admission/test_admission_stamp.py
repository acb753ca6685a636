"""The stamp on an AccountabilityException (``admission.stamp``): who wrote its spec, as the API
server authenticated them. A CREATE, or an UPDATE of the spec, names the request's user whatever
annotation the author wrote; an UPDATE that leaves the spec alone keeps what was stamped, and
removes a value added where there was none."""

from __future__ import annotations

from typing import Any

from affidavit.admission.review import ParsedRequest
from affidavit.admission.stamp import is_exception, stamp_patch
from affidavit.names import REQUESTED_BY_ANNOTATION as KEY

POINTER = "/metadata/annotations/affidavit.dev~1requested-by"
SPEC = {"reason": "outage", "expiresAt": "2026-12-04T00:00:00Z"}


def exc(spec: dict[str, Any] = SPEC, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "hotfix", "namespace": "shop"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "affidavit.dev/v1alpha1", "kind": "AccountabilityException",
            "metadata": meta, "spec": spec}  # fmt: skip


def request(
    new: dict[str, Any], old: dict[str, Any] | None = None, user: str = "alice", sub: str = ""
) -> ParsedRequest:
    return ParsedRequest(
        uid="u",
        kind="AccountabilityException",
        group="affidavit.dev",
        operation="CREATE" if old is None else "UPDATE",
        namespace="shop",
        name="hotfix",
        user=user,
        groups=(),
        object=new,
        sub_resource=sub,
        old_object=old,
    )


def test_a_create_names_its_author_whatever_the_author_wrote() -> None:
    assert stamp_patch(request(exc())) == [
        {"op": "add", "path": "/metadata/annotations", "value": {KEY: "alice"}}
    ]
    forged = exc(annotations={KEY: "victor", "team": "pay"})
    assert stamp_patch(request(forged)) == [{"op": "add", "path": POINTER, "value": "alice"}]
    assert stamp_patch(request(exc(annotations={KEY: "alice"}))) == []


def test_an_update_of_the_spec_names_its_writer_and_other_updates_keep_the_stamp() -> None:
    stamped = exc(annotations={KEY: "alice"})
    longer = {**SPEC, "expiresAt": "2026-12-09T00:00:00Z"}
    assert stamp_patch(request(exc(longer, {KEY: "alice"}), stamped, user="bob")) == [
        {"op": "add", "path": POINTER, "value": "bob"}
    ]
    # bob rewrites the annotation alone: it goes back to alice
    assert stamp_patch(request(exc(annotations={KEY: "bob"}), stamped, user="bob")) == [
        {"op": "add", "path": POINTER, "value": "alice"}
    ]
    # or removes it (all annotations gone): put back
    assert stamp_patch(request(exc(), stamped, user="bob")) == [
        {"op": "add", "path": "/metadata/annotations", "value": {KEY: "alice"}}
    ]
    # the operator's own bookkeeping (another annotation) changes nothing
    kopf = exc(annotations={KEY: "alice", "kopf.zalando.org/last-handled-configuration": "{}"})
    assert stamp_patch(request(kopf, stamped, user="system:serviceaccount:x:op")) == []
    # never stamped (written while the webhook did not run): an added value is removed
    assert stamp_patch(request(exc(annotations={KEY: "victor"}), exc(), user="bob")) == [
        {"op": "remove", "path": POINTER}
    ]


def test_only_the_exception_itself_is_stamped() -> None:
    assert is_exception(request(exc()))
    assert not is_exception(request(exc(), sub="status"))
    pod = request({"metadata": {}})
    assert not is_exception(
        ParsedRequest("u", "Pod", "", "CREATE", "shop", "p", "alice", (), pod.object)
    )
