"""A policy in force that an edit breaks stays in force as it was (``PolicyIndex.from_objects``'s
``last_good``): leaving it out would leave its images matched by nothing, which the default
``unmatchedImages: Warn`` admits, so one bad edit would switch enforcement off for them."""

from __future__ import annotations

from typing import Any

from affidavit.policy import PolicyIndex
from policy_builders import IMAGE, exception, policy, region_policy

CREATED = "2026-11-01T00:00:00Z"
KEYLESS = {"name": "ci", "issuer": "https://token.actions.githubusercontent.com"}


def in_force_policy(name: str = "shop", generation: int = 3, **meta: Any) -> dict[str, Any]:
    p = policy(name, match={"images": ["registry.example/shop/*"]})
    p["metadata"].update(generation=generation, creationTimestamp=CREATED, **meta)
    return p


def broken(obj: dict[str, Any], generation: int = 4) -> dict[str, Any]:
    """``obj`` edited into a spec the schema lets through and the model refuses: a keyless
    signer with both ``subject`` and ``subjectRegExp``."""
    edited = {**obj, "metadata": {**obj["metadata"], "generation": generation}}
    signers = {"keyless": [KEYLESS | {"subject": "a@example.com", "subjectRegExp": ".*"}]}
    edited["spec"] = {**obj["spec"], "signers": signers}
    return edited


def governs(index: PolicyIndex) -> bool:
    """Whether an AccountabilityPolicy matches IMAGE in namespace shop."""
    found = index.effective(cluster="c", region="eu-west", namespace="shop",
                            namespace_labels={}, image=IMAGE)  # fmt: skip
    return found is not None


def build(policies: list[dict[str, Any]], last_good: PolicyIndex | None = None,
          **kw: Any) -> PolicyIndex:  # fmt: skip
    return PolicyIndex.from_objects(policies, kw.get("regions", []), kw.get("exceptions", []),
                                    last_good=last_good)  # fmt: skip


def test_a_broken_edit_leaves_the_generation_in_force_and_says_so() -> None:
    good = build([in_force_policy()])
    assert governs(good)
    after = build([broken(in_force_policy())], last_good=good)
    assert [(p.name, p.generation) for p in after.policies] == [("shop", 3)]
    assert governs(after)  # its images are still governed, not unmatched
    assert after.errors["AccountabilityPolicy/shop"].endswith(
        "; generation 3, its last valid spec, stays in force until this is fixed"
    )
    assert (
        "give exactly one of subject and subjectRegExp" in after.errors["AccountabilityPolicy/shop"]
    )


def test_without_the_index_in_force_a_broken_policy_is_left_out() -> None:
    after = build([broken(in_force_policy())])
    assert after.policies == ()
    assert not governs(after)
    assert not after.errors["AccountabilityPolicy/shop"].endswith("until this is fixed")


def test_the_carried_version_survives_the_published_json_and_another_pass() -> None:
    good = build([in_force_policy()])
    once = build([broken(in_force_policy())], last_good=good)
    published = PolicyIndex.from_json(once.to_json())  # an operator restarted reads this
    assert published.errors == once.errors
    twice = build([broken(in_force_policy(), generation=5)], last_good=published)
    assert [(p.name, p.generation) for p in twice.policies] == [("shop", 3)]
    assert twice.digest == once.digest  # nothing changed in force: nothing to republish


def test_a_policy_deleted_and_made_again_broken_is_not_the_old_one() -> None:
    good = build([in_force_policy()])
    remade = broken(in_force_policy(), generation=1)
    remade["metadata"]["creationTimestamp"] = "2026-11-02T00:00:00Z"
    after = build([remade], last_good=good)
    assert after.policies == ()
    assert "AccountabilityPolicy/shop" in after.errors


def test_a_deleted_policy_leaves_and_a_fixed_one_is_taken_as_edited() -> None:
    good = build([in_force_policy()])
    assert build([], last_good=good).policies == ()
    fixed = in_force_policy(generation=5)
    fixed["spec"]["mode"] = "Warn"
    after = build([fixed], last_good=good)
    assert [(p.name, p.generation, p.spec.mode) for p in after.policies] == [("shop", 5, "Warn")]
    assert after.errors == {}


def test_a_broken_region_policy_stays_in_force() -> None:
    region = region_policy("eu", ["eu-*"], jurisdictions=["eu"])
    region["metadata"]["creationTimestamp"] = CREATED
    good = build([in_force_policy()], regions=[region])
    assert [r.name for r in good.region_policies] == ["eu"]
    # a glob the schema's pattern allows and the model refuses (it would place every .com)
    wide = {"residency": "eu", "registryLocations": [{"registry": "*.com", "location": "eu"}]}
    edited = {**region, "metadata": {**region["metadata"], "generation": 2},
              "spec": {**region["spec"], "evidence": wide}}  # fmt: skip
    after = build([in_force_policy()], good, regions=[edited])
    assert [(r.name, r.generation) for r in after.region_policies] == [("eu", 1)]
    assert after.errors["RegionPolicy/eu"].endswith("stays in force until this is fixed")


def test_a_broken_exception_is_never_carried() -> None:
    granted = exception("hotfix")
    good = build([in_force_policy()], exceptions=[granted])
    assert len(good.exceptions) == 1
    edited = {**granted, "spec": {**granted["spec"], "approvers": []}}
    after = build([in_force_policy()], good, exceptions=[edited])
    assert after.exceptions == ()  # an exception only admits: broken, it leaves
    assert not after.errors["AccountabilityException/shop/hotfix"].endswith("until this is fixed")


# -- fields of newer CRDs (a `helm rollback`: Helm never downgrades crds/) ---------------------


def from_the_future(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with a field a newer version's CRDs declare (the API server keeps it)."""
    edited = {**obj, "spec": {**obj["spec"]}}
    edited["spec"]["require"] = {**obj["spec"].get("require", {}), "futureRule": {"on": True}}
    return edited


def test_a_field_of_newer_crds_is_left_out_and_the_policy_stays_in_force() -> None:
    """After an upgrade, a policy adopts a new field; after `helm rollback`, this older operator
    refused the whole policy as unknown (and, unable to read the index the newer one had
    published, had no last one to keep): its images matched no policy, which the default
    ``unmatchedImages: Warn`` admits. Now the rest of the policy stays in force."""
    stored = [from_the_future(in_force_policy())]
    index = PolicyIndex.from_objects(stored, [], [], leave_out_unknown_fields=True)
    assert [p.name for p in index.policies] == ["shop"] and governs(index)
    note = index.errors["AccountabilityPolicy/shop"]
    assert note.startswith("spec.require.futureRule: a field this version of Affidavit does not")
    assert "helm rollback" in note
    # the index it publishes reads back, the note with it (an older webhook reads it too)
    again = PolicyIndex.from_json(index.to_json())
    assert [p.name for p in again.policies] == ["shop"] and again.errors == index.errors


def test_a_file_or_an_exception_with_an_unknown_field_is_still_refused() -> None:
    # a file is no API server's object: an unknown field there is a typo
    assert PolicyIndex.from_objects([from_the_future(in_force_policy())], [], []).policies == ()
    # an exception only admits: a field it does not know may narrow it
    odd = exception("hotfix", images=[IMAGE])
    odd["spec"]["futureScope"] = "narrow"
    index = PolicyIndex.from_objects([], [], [odd], leave_out_unknown_fields=True)
    assert index.exceptions == ()
    # an unknown field beside a real fault: refused as before
    both = broken(from_the_future(in_force_policy()))
    assert PolicyIndex.from_objects([both], [], [], leave_out_unknown_fields=True).policies == ()


def test_an_index_published_by_a_newer_operator_is_read_without_its_new_fields() -> None:
    newer = PolicyIndex.from_objects([in_force_policy()], [], [])
    text = newer.to_json().replace('"require":{', '"require":{"futureRule":{"on":true},', 1)
    assert "futureRule" in text
    older = PolicyIndex.from_json(text)
    assert governs(older)
    assert "spec.require.futureRule" in older.errors["AccountabilityPolicy/shop"]
