"""Tests that provenance and review must name one repository (``consistentRevision``).

A fork shares its commits: a pull request in a fork, approved there by a second account, has the
same head revision as the change the image was built from. Before, a pipeline made to attest that
review passed every rule. The two collectors spell a repository differently (git's remote, the
change request's web address, a ``file://`` URI), so the names are compared by
``policy.sources.repository_key``.
"""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.policy import Decision, PolicyIndex, evaluate
from affidavit.policy.sources import repository_key
from policy_builders import (
    IMAGE,
    NOW,
    REV,
    approval,
    ctx,
    evidence,
    index,
    policy,
    provenance,
    review,
)

SHOP = "https://github.com/example/shop"


@pytest.mark.parametrize(
    "spelling",
    [
        SHOP,
        "https://github.com/example/shop.git",
        "https://GitHub.com/Example/Shop/",
        "git@github.com:example/shop.git",
        "ssh://git@github.com:22/example/shop.git",
        "https://x-access-token:t@github.com/example/shop",
        "git+https://github.com/example/shop",
    ],
)
def test_spellings_of_one_repository_have_one_key(spelling: str) -> None:
    assert repository_key(spelling) == "github.com/example/shop"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (SHOP, "https://github.com/mallory/shop"),  # a fork
        (SHOP, "https://gitlab.com/example/shop"),  # another host
        (SHOP, "https://github.com/example/shop-fork"),
        ("/builds/example/shop", SHOP),  # a checkout without a remote names no host
        ("/builds/example/shop", "/builds/example/other"),
    ],
)
def test_different_repositories_have_different_keys(one: str, other: str) -> None:
    assert repository_key(one) != repository_key(other)


def test_a_local_path_and_its_file_uri_have_one_key() -> None:
    assert repository_key("/tmp/x/repo") == repository_key("file:///tmp/x/repo")
    assert repository_key("/tmp/x/repo") == "path:/tmp/x/repo"


def _with_repository(predicate: dict[str, Any], repository: str) -> dict[str, Any]:
    return predicate | {"source": predicate["source"] | {"repository": repository}}


def _run(ix: PolicyIndex, prov: dict[str, Any], rev: dict[str, Any]) -> Decision:
    c = ctx()
    return evaluate(c, {c.images[0]: evidence(prov, rev)}, ix, now=NOW, decision_id="d-1")


def test_a_review_of_a_fork_at_the_same_revision_is_refused() -> None:
    fork = _with_repository(review(approval("bob")), "https://github.com/mallory/shop")
    d = _run(index(), provenance(), fork)
    assert d.outcome == "denied"
    assert [v.message for v in d.violations] == [
        f"{IMAGE}: repository.consistent (AccountabilityPolicy/baseline): found ai-provenance of "
        f"{SHOP}, code-review of https://github.com/mallory/shop; expected the review of a "
        "change request in the repository the image was built from; fix: collect the review of "
        f"the change request in {SHOP}, then run `affidavit collect review --github-pr pr.json "
        "--github-reviews reviews.json --github-commits commits.json "
        f"--head {REV} --output review.json && affidavit attest {IMAGE} --predicate review.json "
        "--type https://affidavit.dev/attestations/code-review/v1 --key <key>`"
    ]


def test_another_spelling_of_the_same_repository_is_the_same_repository() -> None:
    prov = _with_repository(provenance(), "git@github.com:example/shop.git")
    assert _run(index(), prov, review(approval("bob"))).outcome == "allowed"


def test_consistent_revision_false_also_turns_the_repository_check_off() -> None:
    fork = _with_repository(review(approval("bob")), "https://github.com/mallory/shop")
    require = {"provenance": {"required": True}, "tiers": {"critical": {"independentApprovals": 1}}}
    relaxed = index([policy(require=require | {"consistentRevision": False})])
    assert _run(index([policy(require=require)]), provenance(), fork).outcome == "denied"
    assert _run(relaxed, provenance(), fork).outcome == "allowed"


@pytest.mark.parametrize("malformed", ["https://[::1", "https://[zz]/example/shop", "http://:/"])
def test_a_malformed_repository_url_is_another_repository_not_a_crash(malformed: str) -> None:
    # signed text, any string: urlsplit raised ValueError on these, out of the evaluation (the
    # webhook then denied the image as an internal error)
    assert repository_key(malformed) != repository_key(SHOP)
    fork = _with_repository(review(approval("bob")), malformed)
    assert [v.rule for v in _run(index(), provenance(), fork).violations] == [
        "repository.consistent"
    ]
