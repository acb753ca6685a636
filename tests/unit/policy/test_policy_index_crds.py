"""The policy index (validation errors, JSON round trip, digest) and the generated CRDs.

The CRD check is the one CI runs: the files in charts/affidavit/crds must equal what the models
produce, and every schema must be structural.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import Field

from affidavit.errors import PolicyError
from affidavit.policy import PolicyIndex
from affidavit.policy.crds import (
    CRDS,
    main,
    render,
    render_all,
    stale,
    structural_problems,
    structural_schema,
    undescribed,
)
from affidavit.policy.spec_base import SpecModel
from policy_builders import IMAGE, exception, index, obj, policy, region_policy

CHART_CRDS = Path(__file__).resolve().parents[3] / "charts" / "affidavit" / "crds"


@pytest.mark.parametrize(
    ("bad", "key", "message"),
    [
        (
            policy("p", mode="Strict"),
            "AccountabilityPolicy/p",
            "spec.mode: Input should be 'Enforce', 'Warn' or 'Audit'",
        ),
        (
            policy("p", require={"tiers": {"critical": {"approvals": -1}}}),
            "AccountabilityPolicy/p",
            "spec.require.tiers.critical.approvals: Input should be greater than or equal to 0",
        ),
        (
            policy(
                "p", require={"tiers": {"critical": {"approvals": 1, "independentApprovals": 2}}}
            ),
            "AccountabilityPolicy/p",
            "spec.require.tiers.critical: Value error, independentApprovals cannot exceed "
            "approvals (independent approvals are approvals); leave approvals at 0 to require "
            "only independent ones",
        ),
        (
            policy("p", requires={}),
            "AccountabilityPolicy/p",
            "spec.requires: unknown field",
        ),
        (
            policy("p", jurisdictions=["gdpr"]),
            "AccountabilityPolicy/p",
            "spec.jurisdictions.0: Input should be 'soc2', 'pci-dss', 'us-fedramp-moderate', "
            "'eu', 'eu-ai-act-high-risk' or 'slsa-source-l4'",
        ),
        (
            {**policy("p"), "apiVersion": "affidavit.dev/v1"},
            "AccountabilityPolicy/p",
            "apiVersion: found 'affidavit.dev/v1'; expected 'affidavit.dev/v1alpha1'",
        ),
    ],
)
def test_invalid_policies_are_kept_out_and_listed(
    bad: dict[str, object], key: str, message: str
) -> None:
    ix = index([policy(), bad])
    assert ix.errors == {key: message}
    assert [p.name for p in ix.policies] == ["baseline"]


def test_invalid_exceptions_and_region_policies() -> None:
    ix = PolicyIndex.from_objects(
        [],
        [region_policy("r", [])],
        [
            exception("e", expiresAt="tomorrow"),
            exception("f", owner="victor"),
            exception("g", images=[]),
        ],
    )
    assert ix.errors == {
        "RegionPolicy/r": "spec.regions: List should have at least 1 item after validation, not 0",
        "AccountabilityException/shop/e": "spec.expiresAt: Input should be a valid datetime or "
        "date, input is too short",
        "AccountabilityException/shop/f": "spec: Value error, the owner cannot approve their own "
        "exception",
        "AccountabilityException/shop/g": "spec: Value error, an exception must name images or "
        "workloads",
    }


def test_json_round_trip_keeps_digest_and_answers() -> None:
    ix = index([policy()], [region_policy("eu", ["eu-*"], jurisdictions=["eu"])], [exception("x")])
    again = PolicyIndex.from_json(ix.to_json())
    assert again.digest == ix.digest
    assert again.generation == ix.digest[7:23]
    args = dict(cluster="c", region="eu-west-1", namespace="shop", namespace_labels={}, image=IMAGE)
    assert again.effective(**args) == ix.effective(**args)  # type: ignore[arg-type]
    changed = index([policy(mode="Warn")], [region_policy("eu", ["eu-*"], jurisdictions=["eu"])])
    assert changed.digest != ix.digest


def test_unreadable_index_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as e:
        PolicyIndex.from_json("{}")
    assert e.value.diagnostic == (
        "the published policy index is unreadable: not a version 1 policy index\n"
        "  hint: the operator rewrites it on the next policy change; check its logs"
    )


def test_wrong_kind_is_rejected() -> None:
    ix = PolicyIndex.from_objects([obj("RegionPolicy", "r", {"regions": ["*"]})], [], [])
    assert ix.errors == {
        "AccountabilityPolicy/r": "kind: found 'RegionPolicy'; expected 'AccountabilityPolicy'"
    }


def test_chart_crds_are_current() -> None:
    assert stale(CHART_CRDS) == []
    assert main(["--check", str(CHART_CRDS)]) == 0


def test_check_fails_on_stale_files_and_write_fixes_them(tmp_path: Path) -> None:
    assert main(["--check", str(tmp_path)]) == 1
    assert main(["--write", str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
    f = tmp_path / "regionpolicies.affidavit.dev.yaml"
    f.write_text(f.read_text().replace("regionpolicy", "regionpolicie"))
    assert stale(tmp_path) == ["regionpolicies.affidavit.dev.yaml"]
    assert main(["--check", str(tmp_path)]) == 1


@pytest.mark.parametrize("crd", CRDS, ids=lambda c: c.kind)
def test_crd_schemas_are_structural(crd: object) -> None:
    doc = render(crd)  # type: ignore[arg-type]
    version = doc["spec"]["versions"][0]
    assert structural_problems(version["schema"]["openAPIV3Schema"]) == []
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]][-2:] == ["Ready", "Age"]


def test_crd_files_parse_and_carry_cel_rules() -> None:
    docs = {name: yaml.safe_load(text) for name, text in render_all().items()}
    assert sorted(docs) == [
        "accountabilityexceptions.affidavit.dev.yaml",
        "accountabilitypolicies.affidavit.dev.yaml",
        "regionpolicies.affidavit.dev.yaml",
    ]
    pol = docs["accountabilitypolicies.affidavit.dev.yaml"]
    spec = pol["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["mode"] == {
        "description": "Enforce denies; Warn admits with a warning; Audit only records the decision.",
        "enum": ["Enforce", "Warn", "Audit"],
        "type": "string",
    }
    tier = spec["properties"]["require"]["properties"]["tiers"]["additionalProperties"]
    assert tier["properties"]["approvals"]["minimum"] == 0
    assert tier["x-kubernetes-validations"][0]["rule"].startswith("!has(self.independentApprovals)")
    exc = docs["accountabilityexceptions.affidavit.dev.yaml"]
    espec = exc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert espec["properties"]["expiresAt"] == {
        "description": "When the waiver ends (RFC 3339, with a time zone), within the policy's "
        "maxDays.",
        "format": "date-time",
        "type": "string",
    }
    assert exc["spec"]["scope"] == "Namespaced"


@pytest.mark.parametrize("crd", CRDS, ids=lambda c: c.kind)
def test_every_crd_field_has_a_description(crd: object) -> None:
    """`kubectl explain` must never show a field of ours without saying what it does."""
    schema = render(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[arg-type]
    assert undescribed(schema) == []


def test_an_undocumented_field_is_found() -> None:
    class Undocumented(SpecModel):
        """A model with one documented field and one without."""

        documented: int = 0
        """Says what it is."""
        silent: list[str] = Field(default_factory=list)

    assert undescribed(structural_schema(Undocumented)) == [".silent"]
