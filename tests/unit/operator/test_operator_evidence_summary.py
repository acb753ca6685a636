"""A RegionPolicy's status says its evidence rules in words, and which admission checks."""

from __future__ import annotations

from affidavit.operator.handlers import compiled_summary
from affidavit.policy.model import RegionPolicySpec


def test_the_compiled_summary_says_which_evidence_rules_admission_checks() -> None:
    spec = RegionPolicySpec.model_validate(
        {
            "regions": ["eu-*"],
            "evidence": {
                "residency": "EU",
                "registryLocations": [
                    {"registry": "registry.eu.example", "location": "eu-west-1"},
                    {"registry": "*.us.example", "location": "US"},
                ],
                "retentionDays": 183,
                "pseudonymousIdentities": True,
                "pseudonymKeyIds": ["da5469a3c0ffee42", "0badc0de0badc0de"],
            },
        }
    )
    summary = compiled_summary("RegionPolicy", spec, "prod-eu-1", "eu-west-1")
    assert summary["evidence"] == [
        "evidence kept in eu: images only from registries placed there (checked at admission)",
        "registry.eu.example stores data in eu-west-1",
        "*.us.example stores data in us",
        "decisions kept at least 183 days (not checked at admission; the audit report shows "
        "whether the ledger removed any)",
        "people named only by pseudonyms in the provenance and review evidence (checked at "
        "admission)",
        "pseudonyms only of key da5469a3c0ffee42 or 0badc0de0badc0de (checked at admission)",
    ]
    bare = RegionPolicySpec.model_validate({"regions": ["eu-*"], "jurisdictions": ["eu"]})
    assert "evidence" not in compiled_summary("RegionPolicy", bare, "prod-eu-1", "eu-west-1")
