"""The stamp on an AccountabilityException (``admission.stamp``): who wrote its spec, as the API
server authenticated them, and in which groups. A CREATE, or an UPDATE of the spec, names the
request's user and groups whatever annotation the author wrote; an UPDATE that leaves the spec
alone keeps what was stamped, and removes a value added where there was none."""

from __future__ import annotations

from typing import Any

from affidavit.admission.review import ParsedRequest
from affidavit.admission.stamp import is_exception, stamp_patch
from affidavit.names import REQUESTED_BY_ANNOTATION as KEY
from affidavit.names import REQUESTED_BY_GROUPS_ANNOTATION as GROUPS

POINTER = "/metadata/annotations/affidavit.dev~1requested-by"
GROUPS_POINTER = "/metadata/annotations/affidavit.dev~1requested-by-groups"
NONE = "[]"  # no groups, as a JSON array
SPEC = {"reason": "outage", "expiresAt": "2026-12-04T00:00:00Z"}


def exc(spec: dict[str, Any] = SPEC, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "hotfix", "namespace": "shop"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "affidavit.dev/v1alpha1", "kind": "AccountabilityException",
            "metadata": meta, "spec": spec}  # fmt: skip


def request(
    new: dict[str, Any],
    old: dict[str, Any] | None = None,
    user: str = "alice",
    sub: str = "",
    groups: tuple[str, ...] = (),
) -> ParsedRequest:
    return ParsedRequest(
        uid="u",
        kind="AccountabilityException",
        group="affidavit.dev",
        operation="CREATE" if old is None else "UPDATE",
        namespace="shop",
        name="hotfix",
        user=user,
        groups=groups,
        object=new,
        sub_resource=sub,
        old_object=old,
    )


def test_a_create_names_its_author_whatever_the_author_wrote() -> None:
    teams = ("oidc:payments", "system:authenticated")
    assert stamp_patch(request(exc(), groups=teams)) == [
        {
            "op": "add",
            "path": "/metadata/annotations",
            "value": {KEY: "alice", GROUPS: '["oidc:payments", "system:authenticated"]'},
        }
    ]
    forged = exc(annotations={KEY: "victor", GROUPS: '["system:masters"]', "team": "pay"})
    assert stamp_patch(request(forged)) == [
        {"op": "add", "path": POINTER, "value": "alice"},
        {"op": "add", "path": GROUPS_POINTER, "value": NONE},
    ]
    assert stamp_patch(request(exc(annotations={KEY: "alice", GROUPS: NONE}))) == []


def test_an_update_of_the_spec_names_its_writer_and_other_updates_keep_the_stamp() -> None:
    stamped = exc(annotations={KEY: "alice", GROUPS: NONE})
    longer = {**SPEC, "expiresAt": "2026-12-09T00:00:00Z"}
    assert stamp_patch(
        request(exc(longer, {KEY: "alice", GROUPS: NONE}), stamped, user="bob", groups=("ops",))
    ) == [
        {"op": "add", "path": POINTER, "value": "bob"},
        {"op": "add", "path": GROUPS_POINTER, "value": '["ops"]'},
    ]
    # bob rewrites the annotations alone: they go back to alice's
    rewritten = exc(annotations={KEY: "bob", GROUPS: '["system:masters"]'})
    assert stamp_patch(request(rewritten, stamped, user="bob")) == [
        {"op": "add", "path": POINTER, "value": "alice"},
        {"op": "add", "path": GROUPS_POINTER, "value": NONE},
    ]
    # or removes them (all annotations gone): put back
    assert stamp_patch(request(exc(), stamped, user="bob")) == [
        {"op": "add", "path": "/metadata/annotations", "value": {KEY: "alice", GROUPS: NONE}}
    ]
    # the operator's own bookkeeping (another annotation) changes nothing
    kopf = exc(
        annotations={
            KEY: "alice",
            GROUPS: NONE,
            "kopf.zalando.org/last-handled-configuration": "{}",
        }
    )
    assert stamp_patch(request(kopf, stamped, user="system:serviceaccount:x:op")) == []
    # never stamped (written while the webhook did not run): an added value is removed
    assert stamp_patch(request(exc(annotations={KEY: "victor"}), exc(), user="bob")) == [
        {"op": "remove", "path": POINTER}
    ]
    # stamped before groups were (an older webhook): the groups stay unknown, not added
    older = exc(annotations={KEY: "alice"})
    assert stamp_patch(request(exc(annotations={KEY: "alice", GROUPS: "[]"}), older)) == [
        {"op": "remove", "path": GROUPS_POINTER}
    ]
    assert stamp_patch(request(exc(), older, user="bob")) == [
        {"op": "add", "path": "/metadata/annotations", "value": {KEY: "alice"}}
    ]


def test_only_the_exception_itself_is_stamped() -> None:
    assert is_exception(request(exc()))
    assert not is_exception(request(exc(), sub="status"))
    pod = request({"metadata": {}})
    assert not is_exception(
        ParsedRequest("u", "Pod", "", "CREATE", "shop", "p", "alice", (), pod.object)
    )
