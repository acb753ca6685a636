"""evidence.pseudonymousIdentities: the provenance and review attestations name people only by
the keyed pseudonyms ``collect --pseudonym-key`` writes.

The eu preset requires it (GDPR Chapter V); before this rule ``explain`` showed it as "not checked
at admission". Each case goes through the real index, combination and evaluation, with evidence
pseudonymised by the collector's own rewriting (``policy_builders.pseudonymous``).
"""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.attestations.pseudonyms import PseudonymKey
from affidavit.policy import Decision, PolicyIndex, evaluate
from policy_builders import (
    IMAGE,
    NOW,
    PR_URL,
    PSEUDONYM_KEY,
    REV,
    approval,
    change,
    ctx,
    evidence,
    index,
    policy,
    provenance,
    pseudonymous,
    region_policy,
    review,
)

RULE = "evidence.pseudonymousIdentities"
EU = region_policy(
    "eu",
    ["eu-*"],
    jurisdictions=["eu"],
    evidence={"registryLocations": [{"registry": "registry.example", "location": "eu-west-1"}]},
)
PROV_TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"
REVIEW_TYPE = "https://affidavit.dev/attestations/code-review/v1"


def judge(
    prov: dict[str, Any] | None, rev: dict[str, Any] | None, ix: PolicyIndex | None = None
) -> Decision:
    ix = ix if ix is not None else index([policy()], [EU])
    found = {IMAGE: evidence(prov, rev)}
    return evaluate(ctx(region="eu-west-1"), found, ix, now=NOW, decision_id="d")


def rules(d: Decision) -> list[str]:
    return [v.rule for v in d.violations]


def reviewed() -> dict[str, Any]:
    return review(approval("rita"), approval("sam"))


def test_plain_evidence_is_refused_naming_the_fields_never_the_people() -> None:
    d = judge(provenance(), reviewed())
    assert d.outcome == "denied"
    assert rules(d) == [RULE, RULE]
    prov, rev = (v.message for v in d.violations)
    assert prov == (
        f"{IMAGE}: {RULE} (preset/eu via RegionPolicy/eu [GDPR Chapter V]): found the "
        "ai-provenance/v1 attestation names people in plain text in 4 fields (commit "
        "c0ffee000000 author.name, commit c0ffee000000 author.email, commit c0ffee000000 "
        "committer.name, and 1 more); expected every person named by a pseudonym "
        "(psn:KEYID:...), as `affidavit collect --pseudonym-key` writes them, so that the evidence "
        "carries no personal data; fix: run `affidavit collect provenance --repo . --base <base> "
        "--head <revision> --pseudonym-key <pseudonym key> --output provenance.json && affidavit "
        f"attest {IMAGE} --predicate provenance.json --type {PROV_TYPE} --key <key>`"
    )
    assert rev.startswith(
        f"{IMAGE}: {RULE} (preset/eu via RegionPolicy/eu [GDPR Chapter V]): found the "
        "code-review/v1 attestation names people in plain text in 6 fields "
        "(changeRequest.author.login, changeRequest.author.email, changeRequest.mergedBy.name, "
        "and 3 more)"
    )
    assert (
        f"--head {REV} --pseudonym-key <pseudonym key> --output review.json && affidavit attest"
        in rev
    )
    for person in ("alice", "rita", "sam", "mia", "Mia Release", "Alice"):
        assert person not in prov.replace(IMAGE, "")
        assert person not in rev.replace(IMAGE, "").replace(PR_URL, "")


def test_evidence_collected_with_a_pseudonym_key_is_admitted() -> None:
    d = judge(pseudonymous(provenance()), pseudonymous(reviewed()))
    assert d.outcome == "allowed", [v.message for v in d.violations]


def test_without_the_requirement_plain_evidence_is_admitted() -> None:
    us = region_policy("eu", ["eu-*"], jurisdictions=["soc2"])
    d = judge(provenance(), reviewed(), index([policy()], [us]))
    assert RULE not in rules(d)
    assert d.outcome == "allowed"


def test_one_plain_reviewer_among_pseudonyms_is_named_by_its_field() -> None:
    rev = pseudonymous(reviewed())
    rev["reviews"].append(approval("carl") | {"independent": False})
    d = judge(pseudonymous(provenance()), rev)
    assert rules(d) == [RULE]
    assert "in 1 field (reviews[2].reviewer.login)" in d.violations[0].found


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (PSEUDONYM_KEY.of("rita"), False),
        (PSEUDONYM_KEY.of("rita").upper(), True),  # another spelling is not the collector's
        ("psn:rita", True),
        ("psn:0123abcd:rita", True),
        ("psn:0123abcd:" + PSEUDONYM_KEY.of("rita").rsplit(":", 1)[1], True),  # an 8-digit id
        (PSEUDONYM_KEY.of("rita") + " ", True),
        (PSEUDONYM_KEY.of("rita") + "@example.com", True),
        ("rita", True),
    ],
)
def test_only_the_collectors_form_is_a_pseudonym(value: str, plain: bool) -> None:
    rev = pseudonymous(reviewed())
    rev["reviews"][0]["reviewer"]["login"] = value
    d = judge(pseudonymous(provenance()), rev)
    assert (RULE in rules(d)) is plain


def test_a_bot_account_stays_readable_but_a_person_flagged_as_a_bot_does_not() -> None:
    rev = pseudonymous(reviewed())
    rev["reviews"].append(approval("dependabot[bot]", bot=True, independent=False))
    d = judge(pseudonymous(provenance()), rev)
    assert d.outcome == "allowed", [v.message for v in d.violations]
    rev["reviews"].append(approval("carl", bot=True, independent=False))
    d = judge(pseudonymous(provenance()), rev)
    assert "(reviews[3].reviewer.login)" in d.violations[0].found


def test_an_ai_tool_suffix_of_a_name_is_kept_and_its_evidence_pseudonymised() -> None:
    prov = provenance(change())
    prov["changes"][0]["author"] = {"name": "Alice (aider)", "email": "alice@example.com"}
    prov["changes"][0]["evidence"] = [
        {"kind": "identity", "detail": "author: Alice (aider) <alice@example.com>"}
    ]
    done = pseudonymous(prov)
    author = done["changes"][0]["author"]
    assert author["name"] == PSEUDONYM_KEY.of("Alice") + " (aider)"
    assert author["email"] == PSEUDONYM_KEY.of("alice@example.com")
    assert done["changes"][0]["evidence"] == [
        {"kind": "identity", "detail": f"author: {author['name']} <{author['email']}>"}
    ]
    assert judge(done, pseudonymous(reviewed())).outcome == "allowed"
    done["changes"][0]["evidence"][0]["detail"] = "author: Alice (aider) <alice@example.com>"
    d = judge(done, pseudonymous(reviewed()))
    assert "(commit c0ffee000000 evidence[0].detail)" in d.violations[0].found
    # the tool's suffix is one word of a tool's name: a person's name cannot ride in it
    done = pseudonymous(prov)
    done["changes"][0]["author"]["name"] = PSEUDONYM_KEY.of("x") + " (Alice Smith)"
    d = judge(done, pseudonymous(reviewed()))
    assert "(commit c0ffee000000 author.name)" in d.violations[0].found


def test_groups_listing_the_reviewers_pseudonyms_judge_a_security_review() -> None:
    secure = {"critical": {"independentApprovals": 1, "securityReview": True}}
    rita = PSEUDONYM_KEY.of("rita")
    listed = policy(
        groups={"security": [rita]}, require=policy()["spec"]["require"] | {"tiers": secure}
    )
    d = judge(pseudonymous(provenance()), pseudonymous(reviewed()), index([listed], [EU]))
    assert d.outcome == "allowed", [v.message for v in d.violations]

    plain = policy(groups={"security": ["rita"]}, require=listed["spec"]["require"])
    d = judge(pseudonymous(provenance()), pseudonymous(reviewed()), index([plain], [EU]))
    assert rules(d) == ["review.critical.securityReview"]
    key_id = PSEUDONYM_KEY.key_id
    assert (
        f"(the review names people by pseudonyms of key {key_id}, the groups list plain logins "
        "or emails: list their pseudonyms, `affidavit pseudonym of --key <pseudonym key> "
        "LOGIN...`)"
    ) in d.violations[0].found
    assert "--pseudonym-key <pseudonym key> --output review.json" in d.violations[0].fix

    other = PseudonymKey(b"another key of at least thirty-two bytes").of("rita")
    elsewhere = policy(groups={"security": [other]}, require=listed["spec"]["require"])
    d = judge(pseudonymous(provenance()), pseudonymous(reviewed()), index([elsewhere], [EU]))
    assert rules(d) == ["review.critical.securityReview"]
    assert (
        f"(the groups list pseudonyms of key {other.split(':')[1]}, the review names people "
        f"under key {key_id}:"
    ) in d.violations[0].found


def test_a_merger_who_is_the_author_is_caught_on_pseudonyms() -> None:
    """pci-dss's independent release approver compares people: pseudonyms keep them equal."""
    rita, sam = PSEUDONYM_KEY.of("rita"), PSEUDONYM_KEY.of("sam")
    groups = {"security": [sam], "secure-code-reviewers": [rita, sam]}
    ix = index([policy(jurisdictions=["pci-dss"], groups=groups)], [EU])
    rev = review(approval("rita"), approval("sam"), merged_by={"login": "alice"})
    d = judge(pseudonymous(provenance()), pseudonymous(rev), ix)
    assert rules(d) == ["review.releaseApprover"]
    assert f"merged by {PSEUDONYM_KEY.of('alice')}, who is the author of {PR_URL}" in (
        d.violations[0].found
    )


def test_every_collect_in_a_fix_carries_the_pseudonym_key() -> None:
    d = judge(pseudonymous(provenance()), None)
    assert rules(d) == ["review.present"]
    assert "--pseudonym-key <pseudonym key> --output review.json" in d.violations[0].fix


def test_evidence_quoting_the_commit_message_names_a_tool_not_a_person() -> None:
    prov = pseudonymous(provenance())
    prov["changes"][0]["evidence"] = [
        {"kind": "identity", "detail": "subject: aider: fix login <see #12>"},
        {"kind": "identity", "detail": "message: 🤖 Generated with [Claude Code]"},
        {"kind": "trailer", "detail": "Co-authored-by: Claude <noreply@anthropic.com>"},
    ]
    d = judge(prov, pseudonymous(reviewed()))
    assert d.outcome == "allowed", [v.message for v in d.violations]


def test_the_key_holder_sees_who_a_pseudonym_is_and_nobody_else_does() -> None:
    from affidavit.attestations.pseudonyms import reveal

    ana, bo = PSEUDONYM_KEY.of("ana@example.com"), PSEUDONYM_KEY.of("bo")
    name = PSEUDONYM_KEY.of("Ana Developer")
    carl = PSEUDONYM_KEY.of("carl")
    text = f"accepted by {name} <{ana}>; reviewers: {bo}, {carl}"
    people = ["Ana Developer <ana@example.com>", "bo", "", "  "]
    assert reveal(text, PSEUDONYM_KEY, people) == (
        f"accepted by Ana Developer <ana@example.com>; reviewers: bo, {carl}"
    )
    other = PseudonymKey(b"not the pipeline's key, though long enough")
    assert reveal(text, other, people) == text
    quoted = reveal(f'"{name}"', PSEUDONYM_KEY, ['Ana "the dev" Developer', "Ana Developer"])
    assert quoted == '"Ana Developer"'
    odd = PSEUDONYM_KEY.of('Ana "x"')
    assert reveal(f'"{odd}"', PSEUDONYM_KEY, ['Ana "x"'], lambda v: v.replace('"', '\\"')) == (
        '"Ana \\"x\\""'
    )


def pinned(*key_ids: str) -> PolicyIndex:
    evidence = {"pseudonymousIdentities": True, "pseudonymKeyIds": list(key_ids)}
    keys = region_policy("eu-keys", ["eu-*"], evidence=evidence)
    return index([policy()], [EU, keys])


def test_pseudonyms_of_a_key_the_region_does_not_list_are_refused() -> None:
    """A team's own key (or a throwaway one) would hide people from everyone accountable."""
    ours = PSEUDONYM_KEY.key_id
    d = judge(
        pseudonymous(provenance()), pseudonymous(reviewed()), pinned(ours, "0badc0de0badc0de")
    )
    assert d.outcome == "allowed", [v.message for v in d.violations]

    d = judge(pseudonymous(provenance()), pseudonymous(reviewed()), pinned("0badc0de0badc0de"))
    assert rules(d) == ["evidence.pseudonymKeyIds"]
    assert d.violations[0].message == (
        f"{IMAGE}: evidence.pseudonymKeyIds (RegionPolicy/eu-keys): found people named by "
        "pseudonyms of a key this region does not list: the ai-provenance/v1 attestation under "
        f"key {ours}; the code-review/v1 attestation under key {ours}; expected pseudonyms of "
        "key 0badc0de0badc0de, which the region's accountable people hold; fix: with the "
        "pseudonym key whose id is 0badc0de0badc0de (`affidavit pseudonym key` prints a new "
        "key's id), run `affidavit "
        "collect provenance --repo . --base <base> --head <revision> --pseudonym-key <pseudonym "
        "key> --output provenance.json && affidavit attest "
        f"{IMAGE} --predicate provenance.json --type {PROV_TYPE} --key <key>`; and run "
        "`affidavit collect review --github-pr pr.json --github-reviews reviews.json "
        f"--github-commits commits.json --head {REV} --pseudonym-key <pseudonym key> --output "
        f"review.json && affidavit attest {IMAGE} --predicate review.json --type {REVIEW_TYPE} "
        "--key <key>`"
    )


def test_one_person_under_another_key_is_enough_to_refuse() -> None:
    rev = pseudonymous(reviewed())
    other = PseudonymKey(b"a second key, thirty-two bytes or more").of("carl")
    rev["reviews"].append(approval(other) | {"independent": False})
    d = judge(pseudonymous(provenance()), rev, pinned(PSEUDONYM_KEY.key_id))
    assert rules(d) == ["evidence.pseudonymKeyIds"]
    assert "the code-review/v1 attestation under key" in d.violations[0].found
    assert "ai-provenance/v1" not in d.violations[0].found


@pytest.mark.parametrize(
    "key_id",
    [
        "0BADC0DE0BADC0DE",
        "0badc0de",
        "0badc0de0badc0d",
        "0badc0de0badc0de0",
        "psn:0badc0de0badc0de",
    ],
)
def test_a_key_id_that_is_not_sixteen_lower_hex_digits_is_invalid(key_id: str) -> None:
    keys = region_policy("eu-keys", ["eu-*"], evidence={"pseudonymKeyIds": [key_id]})
    assert "RegionPolicy/eu-keys" in index([policy()], [keys]).errors


def test_the_status_says_when_a_group_of_logins_can_match_no_pseudonymous_approver() -> None:
    from affidavit.policy import health

    secure = {"critical": {"independentApprovals": 1, "securityReview": True}}
    require = policy()["spec"]["require"] | {"tiers": secure}

    def why(groups: dict[str, list[str]], region: str = "eu-west-1", **evidence: Any) -> Any:
        regional = region_policy("eu-people", ["eu-*"], evidence=evidence or None)
        ix = index([policy(groups=groups, require=require)], [regional])
        (p,) = ix.policies
        source = "AccountabilityPolicy/baseline"
        return health.plain_groups(ix, p.spec.require, p.spec.jurisdictions, None, source, region)

    assert why({"security": ["sam"]}, pseudonymousIdentities=True) == (
        "AccountabilityPolicy/baseline tiers.critical.securityReview needs an approver from "
        "`security`, whose members are listed by login or email, while RegionPolicy/eu-people "
        "has the evidence name people only by pseudonyms: no approval can match them, so every "
        "change that rule covers is denied; list the members' pseudonyms in spec.groups "
        "(`affidavit pseudonym of --key <pseudonym key> LOGIN...`)"
    )
    sam = PSEUDONYM_KEY.of("sam")
    assert why({"security": ["sam", sam]}, pseudonymousIdentities=True) is None
    assert why({"security": ["sam"]}, region="us-east-1", pseudonymousIdentities=True) is None
    assert why({"security": ["sam"]}) is None  # no pseudonyms asked: logins match
