"""A remembered verdict's key holds every input of ``evaluate`` but the uid: changing any other
field of the request context gives another key. So a field added to ``RequestContext`` later
fails here until the key holds it, instead of letting one request's verdict answer another
that differs in it."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from datetime import UTC, datetime
from typing import Any

import pytest

from affidavit.admission.verdicts import Verdicts
from affidavit.policy.decision import Caller
from affidavit.policy.evaluate import RequestContext
from affidavit.policy.index import PolicyIndex

NOW = datetime(2026, 12, 1, tzinfo=UTC)
INDEX = PolicyIndex.from_objects([], [], [])
BASE = RequestContext(
    uid="u-1",
    cluster="prod-1",
    region="eu-west-1",
    namespace="shop",
    namespace_labels={"team": "payments"},
    kind="Deployment",
    name="api",
    operation="CREATE",
    user="alice",
    labels={"app": "api"},
    images=("registry.example/shop/api:1.0",),
    unmatched_images="Warn",
    caller=Caller(authenticated=True, identity="kube-apiserver"),
)
#: Another value for each field (the uid's must not change the key).
OTHER: dict[str, Any] = {
    "uid": "u-2",
    "cluster": "prod-2",
    "region": "us-east-1",
    "namespace": "billing",
    "namespace_labels": {"team": "billing"},
    "kind": "StatefulSet",
    "name": "db",
    "operation": "UPDATE",
    "user": "bob",
    "labels": {"app": "db"},
    "images": ("registry.example/shop/api:2.0",),
    "unmatched_images": "Deny",
    "caller": Caller(authenticated=False),
    "lineage": (("ReplicaSet", "api-5d8f"), ("Deployment", "api")),
    "expect_pinned": frozenset({"registry.example/shop/api:1.0"}),
    "acts_as": (("carol", "who may act as the deployer"),),
    "groups": ("oncall", "system:authenticated"),
}


def _key(ctx: RequestContext) -> Hashable:
    key = Verdicts._key(ctx, {}, INDEX, {}, NOW)
    assert key is not None
    return key


def test_every_field_has_another_value_here() -> None:
    assert set(OTHER) == {f.name for f in dataclasses.fields(RequestContext)}


@pytest.mark.parametrize("field", sorted(set(OTHER) - {"uid"}))
def test_every_field_but_the_uid_is_in_the_key(field: str) -> None:
    changed = dataclasses.replace(BASE, **{field: OTHER[field]})
    assert _key(changed) != _key(BASE)


def test_the_uid_is_not_in_the_key() -> None:
    assert _key(dataclasses.replace(BASE, uid=OTHER["uid"])) == _key(BASE)
