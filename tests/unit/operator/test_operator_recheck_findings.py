"""Tests how a re-check's Decision becomes a PolicyReport result (``operator.findings``) and how
running Pods are grouped by their top controller (``operator.running``): the outcomes the e2e
test cannot reach cheaply (Audit and Warn modes, an unreachable registry, a Job of a CronJob,
an owner that is gone), with the exact words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from affidavit.operator.findings import finding, span
from affidavit.operator.running import group_pods
from affidavit.policy.decision import Decision, PolicyRef, Violation

NOW = datetime(2026, 3, 1, tzinfo=UTC)
IMAGE = "registry.example/shop/checkout@sha256:" + "a" * 64
FIX = "get 1 independent approval, then run `affidavit collect review --trailers`"


def _decision(outcome: str, mode: str, *violations: Violation, policies: bool = True) -> Decision:
    return Decision(
        id="d-1", time="2026-03-01T00:00:00Z", cluster="c", region="r", namespace="shop",
        kind="Deployment", name="checkout", operation="RECHECK", user="u",
        outcome=outcome, mode=mode, violations=violations,  # type: ignore[arg-type]
        policies=(PolicyRef("AccountabilityPolicy", "baseline"),) if policies else (),
    )  # fmt: skip


def _violation(rule: str, fix: str = FIX) -> Violation:
    return Violation(rule, "AccountabilityPolicy/baseline", "nothing", "something", fix, IMAGE)


def test_audit_mode_is_a_failure_and_a_shared_fix_command_is_given_once() -> None:
    d = _decision("audited", "Audit", _violation("review.a"), _violation("review.b"))
    f = finding("Deployment/checkout", d, now=NOW, warn_within=timedelta(days=3))
    assert f is not None and (f.result, f.rule) == ("fail", "review.a")
    assert f.message == (
        "Deployment/checkout runs without the evidence its policies now require "
        "(2 violations, policy in Audit mode; reported, not evicted):\n"
        f"- {IMAGE}: review.a (AccountabilityPolicy/baseline): found nothing; expected "
        "something; fix: get 1 independent approval\n"
        f"- {IMAGE}: review.b (AccountabilityPolicy/baseline): found nothing; expected "
        "something; fix: get 1 independent approval\n"
        "then run, once for all of the above: `affidavit collect review --trailers`"
    )
    assert f.properties["rules"] == "review.a, review.b"


def test_warn_mode_is_a_warning() -> None:
    d = _decision("warned", "Warn", _violation("review.a"))
    f = finding("Deployment/checkout", d, now=NOW, warn_within=timedelta(days=3))
    assert f is not None and f.result == "warn"
    assert f.message.startswith(
        "Deployment/checkout runs without the evidence its policies now require "
        "(1 violation, policy in Warn mode; reported, not evicted):\n- "
    )


def test_an_unreachable_registry_is_an_error_not_a_finding() -> None:
    unreachable = Violation("evidence.unavailable", "AccountabilityPolicy/baseline",
                            "registry registry.example is unreachable", "verified attestations",
                            "retry", IMAGE)  # fmt: skip
    f = finding("Deployment/checkout", _decision("denied", "Enforce", unreachable), now=NOW,
                warn_within=timedelta(days=3))  # fmt: skip
    assert f is not None and f.result == "error"
    assert f.message.startswith("Deployment/checkout could not be re-checked (1 violation):\n- ")
    # ...but one real violation beside it makes it a failure
    both = _decision("denied", "Enforce", unreachable, _violation("review.a"))
    f = finding("Deployment/checkout", both, now=NOW, warn_within=timedelta(days=3))
    assert f is not None and f.result == "fail"


def test_nothing_to_say_about_what_no_policy_covers() -> None:
    d = _decision("allowed", "Enforce", policies=False)
    assert finding("Deployment/checkout", d, now=NOW, warn_within=timedelta(days=3)) is None


def test_the_warning_window_is_written_in_its_largest_exact_unit() -> None:
    assert [span(timedelta(seconds=s)) for s in (259200, 3600, 5400, 90, 0)] == [
        "3d", "1h", "90m", "90s", "0s",
    ]  # fmt: skip


def _obj(kind: str, name: str, uid: str, owner: tuple[str, str, str, str] | None = None,
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "uid": uid,
                            "labels": {"app": name}}  # fmt: skip
    if owner is not None:
        api, okind, oname, ouid = owner
        meta["ownerReferences"] = [{"apiVersion": api, "kind": okind, "name": oname,
                                    "uid": ouid, "controller": True}]  # fmt: skip
    return {"kind": kind, "metadata": meta, **extra}


def test_pods_are_grouped_by_their_top_controller() -> None:
    owners = {
        ("apps", "ReplicaSet", "shop", "web-1"): _obj("ReplicaSet", "web-1", "rs1",
                                                      ("apps/v1", "Deployment", "web", "d1")),
        ("apps", "Deployment", "shop", "web"): _obj("Deployment", "web", "d1"),
        ("batch", "Job", "shop", "nightly-1"): _obj("Job", "nightly-1", "j1",
                                                    ("batch/v1", "CronJob", "nightly", "c1")),
        ("batch", "CronJob", "shop", "nightly"): _obj("CronJob", "nightly", "c1"),
        ("apps", "ReplicaSet", "shop", "old-1"): _obj("ReplicaSet", "old-1", "rs2",
                                                      ("apps/v1", "Deployment", "old", "gone")),
    }  # fmt: skip
    pods = [
        _obj("Pod", "web-1-a", "p1", ("apps/v1", "ReplicaSet", "web-1", "rs1")),
        _obj("Pod", "web-1-b", "p2", ("apps/v1", "ReplicaSet", "web-1", "rs1")),
        _obj("Pod", "nightly-1-a", "p3", ("batch/v1", "Job", "nightly-1", "j1")),
        _obj("Pod", "nightly-0-a", "p4", ("batch/v1", "Job", "nightly-1", "j1"),
             status={"phase": "Succeeded"}),
        _obj("Pod", "debug", "p5"),
        # its Deployment is gone (another uid): reported under the ReplicaSet that is there
        _obj("Pod", "old-1-a", "p6", ("apps/v1", "ReplicaSet", "old-1", "rs2")),
        # a forged reference (not the owner's uid) is not followed
        _obj("Pod", "forged", "p7", ("apps/v1", "ReplicaSet", "web-1", "not-rs1")),
        # nor one to a kind that makes no Pods, even with its uid (anyone may read it): the
        # Pod would be reported as the Deployment, with its labels and workload exceptions
        _obj("Pod", "posing", "p8", ("apps/v1", "Deployment", "web", "d1")),
    ]  # fmt: skip
    found = group_pods(pods, lambda g, k, ns, n: owners.get((g, k, ns, n)))
    assert [(w.api_version, w.kind, w.name, w.uid, len(w.pods)) for w in found] == [
        ("batch/v1", "CronJob", "nightly", "c1", 1),
        ("apps/v1", "Deployment", "web", "d1", 2),
        ("v1", "Pod", "debug", "p5", 1),
        ("v1", "Pod", "forged", "p7", 1),
        ("v1", "Pod", "posing", "p8", 1),
        ("apps/v1", "ReplicaSet", "old-1", "rs2", 1),
    ]
    assert found[1].labels == {"app": "web"}  # the Deployment's own labels


def test_a_pod_terminating_for_longer_than_a_few_minutes_is_still_rechecked() -> None:
    """A Pod deleted (or scaled away) is left out while it goes. One whose owner gave it a day
    to stop (``terminationGracePeriodSeconds``), with a process that ignores SIGTERM, runs a
    day after the delete: it was hidden from the re-check all that time."""
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def deleted(name: str, uid: str, due: str) -> dict[str, Any]:
        pod = _obj("Pod", name, uid)
        pod["metadata"]["deletionTimestamp"] = due
        return pod

    pods = [
        deleted("going", "p1", "2026-12-04T12:00:30Z"),  # the usual 30 s: left out
        deleted("lingering", "p2", "2026-12-05T12:00:00Z"),  # a day: still running, judged
        deleted("odd", "p3", "not a time"),  # judged as running
    ]
    found = group_pods(pods, lambda g, k, ns, n: None, now=now)
    assert [w.name for w in found] == ["lingering", "odd"]
