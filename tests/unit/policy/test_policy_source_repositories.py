"""``require.sourceRepositories``: the provenance and the review must name a repository every
matching policy allows. A signature says who signed, not for which repository: a CI key that
several repositories share, or a reusable signing workflow any repository of the organisation
(or of GitHub) may call, signs honest attestations of another repository's build, and anyone
who may push to this image's path could attach them to an unreviewed image there."""

from __future__ import annotations

from typing import Any

from affidavit.policy import Decision, evaluate
from affidavit.policy.explain import explain_policy
from policy_builders import (
    IMAGE,
    NOW,
    approval,
    ctx,
    evidence,
    index,
    policy,
    provenance,
    review,
)

APPROVED = (approval("rita"), approval("sam"))


def _from(repository: str, predicate: dict[str, Any]) -> dict[str, Any]:
    return {**predicate, "source": {**predicate["source"], "repository": repository}}


def run(policies: list[dict[str, Any]], prov: dict[str, Any], rev: dict[str, Any]) -> Decision:
    return evaluate(ctx(), {IMAGE: evidence(prov, rev)}, index(policies), now=NOW, decision_id="d")


def payments(*globs: str) -> dict[str, Any]:
    base = policy()
    return policy(require={**base["spec"]["require"], "sourceRepositories": list(globs)})


def test_a_build_of_another_repository_is_no_evidence_for_these_images() -> None:
    scratch = "https://github.com/mallory/scratch"
    d = run([payments("https://github.com/example/shop")], _from(scratch, provenance()),
            _from(scratch, review(*APPROVED)))  # fmt: skip
    assert d.outcome == "denied"
    assert [v.message for v in d.violations] == [
        f"{IMAGE}: source.repository (AccountabilityPolicy/baseline): found {kind} of a build"
        f" from {scratch}; expected a build from one of: https://github.com/example/shop; fix:"
        " build and attest the image in one of those repositories; if this one is meant to"
        " deploy here, have AccountabilityPolicy/baseline add it to"
        " `spec.require.sourceRepositories`"
        for kind in ("ai-provenance", "code-review")
    ]


def test_the_repositorys_other_spellings_and_globs_match() -> None:
    # the scheme, a login, a port, .git and case do not make another repository
    for name in (
        "https://github.com/example/shop",
        "git@github.com:example/shop.git",
        "ssh://git@GitHub.com:22/example/shop",
    ):
        prov, rev = _from(name, provenance()), _from(name, review(*APPROVED))
        for glob in ("https://github.com/example/shop", "github.com/example/*"):
            assert run([payments(glob)], prov, rev).outcome == "allowed", (name, glob)
    # `*` stands for one path segment: a deeper path elsewhere does not match
    deep = "https://gitlab.com/mallory/example/shop"
    d = run([payments("*/example/shop")], _from(deep, provenance()),
            _from(deep, review(*APPROVED)))  # fmt: skip
    assert [v.rule for v in d.violations] == ["source.repository"] * 2
    assert run([payments("*/example/shop")], provenance(), review(*APPROVED)).outcome == "allowed"
    # a glob names the path, not a prefix: the organisation's other repositories stay out
    other = "https://github.com/example/shop-fork"
    d = run([payments("github.com/example/shop")], _from(other, provenance()),
            _from(other, review(*APPROVED)))  # fmt: skip
    assert [v.rule for v in d.violations] == ["source.repository"] * 2


def test_every_matching_policy_has_its_say() -> None:
    shop = "https://github.com/example/shop"
    broad = payments("github.com/example/*")
    narrow = {**payments("github.com/acme/*"), "metadata": {"name": "narrow"}}
    d = run([broad, narrow], provenance(), review(*APPROVED))
    assert {(v.rule, v.policy) for v in d.violations} == {
        ("source.repository", "AccountabilityPolicy/narrow")
    }
    assert run([broad], _from(shop, provenance()), review(*APPROVED)).outcome == "allowed"


def test_explain_shows_the_repositories() -> None:
    eff = index([payments("github.com/example/shop")]).effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert eff is not None
    lines = [" ".join(line.split()) for line in explain_policy(eff).splitlines()]
    assert (
        "source.repositories: [github.com/example/shop] <- AccountabilityPolicy/baseline" in lines
    )
