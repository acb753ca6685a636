"""The served CRD schemas against this version's: which ``spec`` fields the server lacks.

The document is shaped as the API server serves ``/openapi/v3/apis/affidavit.dev/v1alpha1``
(components.schemas keyed ``dev.affidavit.v1alpha1.KIND``, the CRD's schema inline); the real
server's is read in tests/e2e/operator/test_operator_readiness.py.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from affidavit.operator.crd_drift import describe, fields, missing_fields
from affidavit.operator.readiness import Readiness
from affidavit.policy.crds import CRDS, render


def served() -> dict[str, Any]:
    schemas = {
        f"dev.affidavit.v1alpha1.{crd.kind}": render(crd)["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"
        ]
        for crd in CRDS
    }
    return {"openapi": "3.0.0", "components": {"schemas": copy.deepcopy(schemas)}}


def test_the_schemas_this_version_installs_lack_nothing() -> None:
    assert missing_fields(served()) == {}


def test_a_field_the_server_lacks_is_named_with_its_kind() -> None:
    document = served()
    policy = document["components"]["schemas"]["dev.affidavit.v1alpha1.AccountabilityPolicy"]
    require = policy["properties"]["spec"]["properties"]["require"]["properties"]
    del require["certifiedSource"]
    exceptions = policy["properties"]["spec"]["properties"]["exceptions"]["properties"]
    del exceptions["repositoryOnly"]
    assert missing_fields(document) == {
        "AccountabilityPolicy": ["exceptions.repositoryOnly", "require.certifiedSource"]
    }


def test_a_kind_not_served_lacks_its_whole_spec_and_the_reason_stays_short() -> None:
    document = served()
    del document["components"]["schemas"]["dev.affidavit.v1alpha1.RegionPolicy"]
    lacking = missing_fields(document)
    assert list(lacking) == ["RegionPolicy"] and len(lacking["RegionPolicy"]) > 3
    reason = describe(lacking)
    first = ", ".join(f"spec.{p}" for p in lacking["RegionPolicy"][:3])
    assert reason.startswith(
        "the API server serves older Affidavit CRDs than this operator's: RegionPolicy has no "
        f"{first} and {len(lacking['RegionPolicy']) - 3} more; "
    )
    assert reason.endswith("kubectl apply --server-side -f charts/affidavit/crds/ (helm upgrade "
                           "leaves a chart's crds/ as first installed)")  # fmt: skip


def test_field_paths_follow_lists_maps_and_combinators() -> None:
    schema = {
        "properties": {
            "tiers": {"additionalProperties": {"properties": {"approvals": {}}}},
            "keys": {"items": {"properties": {"name": {}}}},
            "either": {"anyOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]},
        }
    }
    assert list(fields(schema)) == [
        "tiers", "tiers{}.approvals", "keys", "keys[].name", "either", "either.a", "either.b",
    ]  # fmt: skip


def test_readiness_says_the_crds_first_and_recovers() -> None:
    ready = Readiness(max_age=datetime.timedelta(minutes=5))
    ready.succeeded("sha256:ab")
    assert ready.state()[0] is True
    ready.crds("the API server serves older Affidavit CRDs than this operator's: …")
    assert ready.state() == (
        False,
        "the API server serves older Affidavit CRDs than this operator's: …",
    )
    ready.crds(None)
    assert ready.state() == (True, "policy index sha256:ab published")


@pytest.mark.parametrize("hold", [True, False])
def test_older_crds_hold_the_start_only_when_told_to(hold: bool) -> None:
    # under a Recreate rollout no old Pod serves while a new one starts: a held start was a
    # webhook without endpoints; /readyz (and the gauge) still say not ready either way
    ready = Readiness(max_age=datetime.timedelta(minutes=5), crds_hold_start=hold)
    ready.succeeded("sha256:ab")
    problem = "the API server serves older Affidavit CRDs than this operator's: …"
    ready.crds(problem)
    assert ready.state() == (False, problem)
    assert ready.state(start=True) == (
        (False, problem) if hold else (True, "policy index sha256:ab published")
    )
    # what holds any start holds this one too: no index yet
    fresh = Readiness(max_age=datetime.timedelta(minutes=5), crds_hold_start=hold)
    fresh.crds(problem)
    assert fresh.state(start=True)[0] is False
