"""``exceptions.repositoryOnly``: an exception's image globs may each cover one repository.

The glob-must-start-with-literal-text rule keeps ``*`` out of exceptions, but
``registry.example/*`` is the same switch for a company with one registry: every image on it
admitted for as long as the exception lasts. Where a policy says ``repositoryOnly``, such an
exception admits nothing (a violation names it and its globs), the operator marks it Invalid and
leaves it out of the index; one naming the repository, a wildcard at most in its tag or digest,
admits as before; one policy saying so is enough; without it nothing changes.
"""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.policy.explain import explain_policy
from affidavit.policy.health import exception_problems
from affidavit.policy.matching import one_repository
from policy_builders import IMAGE, REPO, exception, index, judge_unreviewed, policy


@pytest.mark.parametrize(
    ("glob", "one"),
    [
        ("registry.example/shop/payments", True),
        ("registry.example/shop/payments:*", True),
        ("registry.example/shop/payments:v1.*", True),
        ("registry.example/shop/payments@sha256:*", True),
        ("registry.example:5000/shop/payments:*", True),
        ("[::1]:5000/shop/payments:*", True),
        ("nginx:1.*", True),  # docker.io/library/nginx
        ("registry.example/*", False),
        ("registry.example/shop/*", False),
        ("registry.example/shop/pay*", False),
        ("registry.example/shop/payments*", False),  # payments-admin too
        ("registry.example/sho?/payments", False),
        ("registry.example/[s]hop/payments", False),
        ("registry.*/shop/payments", False),
        ("nginx*", False),
        ("[[]::1]:5000/shop/*", False),
    ],
)
def test_one_repository(glob: str, one: bool) -> None:
    assert one_repository(glob) is one


def scoped(name: str = "baseline") -> dict[str, Any]:
    return policy(name, exceptions={"repositoryOnly": True})


def test_an_exception_for_the_whole_registry_admits_nothing() -> None:
    wide = exception("hotfix", images=["registry.example/*", f"{REPO}:*"])
    d = judge_unreviewed(index([scoped()], exceptions=[wide]))
    assert d.outcome == "denied"
    (scope,) = [v for v in d.violations if v.rule == "exceptions.repositoryOnly"]
    assert scope.policy == "AccountabilityPolicy/baseline"
    assert scope.found == (
        "the exceptions covering it cover more than one repository: shop/hotfix names "
        "registry.example/*"
    )
    assert scope.fix.startswith(f"narrow the exception's spec.images to the repository it is for "
                                f"(e.g. {REPO} or {REPO}:*)")  # fmt: skip
    problems = exception_problems(index([scoped()], exceptions=[wide]), cluster="c", region="r")
    assert problems["AccountabilityException/shop/hotfix"].startswith(
        "spec.images: registry.example/* cover(s) more than one repository, and "
        "AccountabilityPolicy/baseline allows exceptions only for one repository each"
    )


def test_an_exception_for_the_repository_admits_and_a_wide_one_beside_it_is_not_used() -> None:
    narrow = exception("hotfix", images=[REPO])  # every tag and digest of one repository
    d = judge_unreviewed(index([scoped()], exceptions=[narrow]))
    assert (d.outcome, d.exception) == ("excepted", "shop/hotfix")
    assert exception_problems(index([scoped()], exceptions=[narrow]), cluster="c", region="r") == {}
    both = [exception("wide", images=["registry.example/shop/*"]), narrow]
    d = judge_unreviewed(index([scoped()], exceptions=both))
    assert (d.outcome, d.exception) == ("excepted", "shop/hotfix")
    assert all(v.rule != "exceptions.repositoryOnly" for v in d.violations)


def test_one_policy_is_enough_and_without_the_rule_nothing_changes() -> None:
    wide = [exception("hotfix", images=["registry.example/*"])]
    assert judge_unreviewed(index([policy()], exceptions=wide)).outcome == "excepted"
    strict = index([policy("lax"), scoped("strict")], exceptions=wide)
    assert judge_unreviewed(strict).outcome == "denied"
    eff = strict.effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert eff is not None and eff.exception_repository_only is not None
    assert "exceptions.repositoryOnly" in explain_policy(eff)


def test_an_exception_naming_only_workloads_is_narrow_already() -> None:
    by_workload = exception(
        "hotfix", images=[], workloads=[{"kind": "Deployment", "name": "payments"}]
    )
    d = judge_unreviewed(index([scoped()], exceptions=[by_workload]))
    assert (d.outcome, d.exception) == ("excepted", "shop/hotfix")
