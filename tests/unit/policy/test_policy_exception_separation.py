"""``exceptions.separateRequester``: an exception admits nothing its own requester deploys.

The requester is the webhook's stamp (the API server's name for whoever wrote the exception's
spec). The deployer's own exception, or one nobody is on record as requesting (not stamped),
is passed over with a violation that names it; another person's admits as before; one policy
turning the rule on is enough (strictest wins); without it nothing changes.
"""

from __future__ import annotations

import json
from typing import Any

from affidavit.names import REQUESTED_BY_ANNOTATION, REQUESTED_BY_GROUPS_ANNOTATION
from affidavit.policy.explain import explain_policy
from policy_builders import IMAGE, NOW, exception, index, judge_unreviewed, policy

DEPLOYER = "release-bot"  # the user of policy_builders.ctx()


def stamped(name: str, requester: str | None) -> dict[str, Any]:
    obj = exception(name)
    if requester is not None:
        obj["metadata"]["annotations"] = {REQUESTED_BY_ANNOTATION: requester}
    return obj


def separated(name: str = "baseline") -> dict[str, Any]:
    return policy(name, exceptions={"separateRequester": True})


def test_the_deployers_own_exception_admits_nothing() -> None:
    d = judge_unreviewed(index([separated()], exceptions=[stamped("hotfix", DEPLOYER)]))
    assert d.outcome == "denied"
    (sod,) = [v for v in d.violations if v.rule == "exceptions.separateRequester"]
    assert sod.policy == "AccountabilityPolicy/baseline"
    assert sod.found == (
        f"the exceptions covering it cannot admit what {DEPLOYER} deploys: "
        f"shop/hotfix (requested by {DEPLOYER})"
    )
    assert "second person" in sod.fix


def test_an_unstamped_exception_admits_nothing_under_the_rule() -> None:
    d = judge_unreviewed(index([separated()], exceptions=[stamped("hotfix", None)]))
    assert d.outcome == "denied"
    assert any(
        "shop/hotfix (requested by nobody on record: not stamped)" in v.found for v in d.violations
    )


def test_another_persons_exception_admits_and_is_recorded() -> None:
    d = judge_unreviewed(index([separated()], exceptions=[stamped("hotfix", "oncall-lead")]))
    assert (d.outcome, d.exception) == ("excepted", "shop/hotfix")
    assert d.snapshot is not None
    assert [e.requested_by for e in d.snapshot.exceptions] == ["oncall-lead"]
    # The deployer's own beside another's: the other one admits, the own one is not used.
    both = [stamped("mine", DEPLOYER), stamped("theirs", "oncall-lead")]
    d = judge_unreviewed(index([separated()], exceptions=both))
    assert (d.outcome, d.exception) == ("excepted", "shop/theirs")
    assert all(v.rule != "exceptions.separateRequester" for v in d.violations)


def test_one_policy_is_enough_and_without_the_rule_nothing_changes() -> None:
    own = [stamped("hotfix", DEPLOYER)]
    assert judge_unreviewed(index([policy()], exceptions=own)).outcome == "excepted"
    strict = index([policy("lax"), separated("strict")], exceptions=own)
    assert judge_unreviewed(strict).outcome == "denied"
    eff = strict.effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert eff is not None and eff.exception_separation is not None
    assert "exceptions.separateRequester" in explain_policy(eff)
    # a policy may ask for the separation alone: the cluster's maxDays still bounds exceptions
    assert eff.exception_max_days is not None and eff.exception_max_days.value == 7


def test_a_long_stamp_is_no_stamp_not_another_name() -> None:
    """A stamp was cut to 256 characters, so a long ServiceAccount's own exception (its name up
    to 339 characters) no longer named it and admitted what it deployed (found by a review
    helper). Names are read whole now; one past the limit counts as no stamp."""
    long_account = "system:serviceaccount:" + "n" * 63 + ":" + "a" * 253
    own = index([separated()], exceptions=[stamped("hotfix", long_account)])
    (ref,) = own.exceptions_for("shop", "Deployment", "api", IMAGE, NOW)
    assert ref.requested_by == long_account
    past = index([separated()], exceptions=[stamped("hotfix", "x" * 1025)])
    (ref,) = past.exceptions_for("shop", "Deployment", "api", IMAGE, NOW)
    assert ref.requested_by is None


def test_the_stamped_groups_are_read_only_in_their_shape() -> None:
    def groups_of(value: str) -> tuple[str, ...] | None:
        obj = stamped("hotfix", "bob")
        obj["metadata"]["annotations"][REQUESTED_BY_GROUPS_ANNOTATION] = value
        (ref,) = index([separated()], exceptions=[obj]).exceptions_for(
            "shop", "Deployment", "api", IMAGE, NOW
        )
        return ref.requested_groups

    assert groups_of('["oncall", "system:authenticated"]') == ("oncall", "system:authenticated")
    assert groups_of(json.dumps([f"g{i}" for i in range(1024)])) is not None
    for bad in ("oncall", '{"a": 1}', "[1]", json.dumps([f"g{i}" for i in range(1025)])):
        assert groups_of(bad) is None  # unknown: under the rule, the exception admits nothing
