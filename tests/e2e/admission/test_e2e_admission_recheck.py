"""End-to-end: the operator keeps watching what was admitted (issue 10, "Keep watching after
admission").

A real control plane (its controller manager creates the ReplicaSets and Pods), the real
registry with the suite's signed releases, the webhook and the operator as processes; the
operator runs with ``--recheck-seconds``: it re-judges the running workloads with the
webhook's engine and publishes one wgpolicyk8s.io/v1alpha2 PolicyReport per namespace, which
the apiserver validates against the structural CRD in ``tests/fixtures/crds``. What is shown:
a workload admitted under a loose policy is ``pass``; tightening the policy makes it ``fail``
with the violation in full (rule, policy, evidence found and expected, the fix) while its Pods
run on, untouched; a workload on an exception that expires within the warning window is
``warn``, one whose exception has time left is ``skip``; a residency the region adds fails
what runs from a registry placed elsewhere until the registry is placed in it; deleting a workload removes its result
(and the last one, the report); the gauge at the operator's ``/metrics`` counts what the
reports say. There is no kubelet, so no Pod has ``status.imageID``: the images are judged as the
Pod spec writes them, and the result says so (``imagesFromSpec``).
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admission_e2e_support import (
    REPO,
    Releases,
    apply_and_sync,
    deployment,
    exception,
    from_now,
    pod,
    policy,
    region_policy,
    review_violation,
    running_stack,
    tag,
    wait_for,
)

from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo, free_port

SYSTEM = "affidavit-e2e-recheck"
NS = "adm-recheck"
POLICY = "adm-recheck-baseline"
REPORT = "affidavit-running"
CRD = (
    Path(__file__).resolve().parents[2] / "fixtures" / "crds" / "wgpolicyk8s.io_policyreports.yaml"
)
WINDOW_SECONDS = 3600  # --expiry-warning-seconds: "1h" in the messages


@pytest.fixture(scope="module")
def metrics_port() -> int:
    """The operator's /readyz and /metrics port."""
    return free_port()


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo,
    releases: Releases,
    tmp_path_factory: pytest.TempPathFactory,
    metrics_port: int,
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-recheck")
    operator_args = [
        "--recheck-seconds", "2",
        "--expiry-warning-seconds", str(WINDOW_SECONDS),
        "--insecure-registry", releases.registry_host,
        "--readiness", f"http://127.0.0.1:{metrics_port}/readyz",
    ]  # fmt: skip
    with running_stack(
        control_plane, releases.registry_host, work, SYSTEM, operator_args=operator_args
    ) as running:
        running.kubectl("apply", "-f", str(CRD))
        running.kubectl("wait", "--for=condition=Established",
                        "crd/policyreports.wgpolicyk8s.io", "--timeout=60s")  # fmt: skip
        running.kubectl("create", "namespace", NS)
        apply_and_sync(running, loose(releases))
        try:
            yield running
        finally:
            running.kubectl("delete", "accountabilitypolicy", POLICY, "--ignore-not-found")
            running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")


def loose(releases: Releases) -> dict[str, Any]:
    """Provenance only: what the suite's ``late`` release has."""
    return _policy(releases, {"provenance": {"required": True}})


def tight(releases: Releases) -> dict[str, Any]:
    """AI-touched critical code needs an independent approval on the final revision: ``late``
    (an AI change to src/auth/login.py pushed after the approval) no longer has it."""
    require = {"provenance": {"required": True}, "tiers": {"critical": {"independentApprovals": 1}}}
    return _policy(releases, require)


def _policy(releases: Releases, require: dict[str, Any]) -> dict[str, Any]:
    obj = policy(POLICY, releases.registry_host, releases.public_pem, require=require)
    # Only this module's namespace: other modules' leftovers are not this test's to report.
    obj["spec"]["match"]["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": NS}}
    return obj


def report(stack: ClusterStack) -> dict[str, Any] | None:
    proc = stack.kubectl("get", "policyreports.wgpolicyk8s.io", REPORT, "-n", NS, "-o", "json",
                         check=False)  # fmt: skip
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def result_for(stack: ClusterStack, name: str, result: str | None = None) -> dict[str, Any] | None:
    """The report's result about the workload ``name`` (with that ``result``, if given)."""
    found = [
        r
        for r in (report(stack) or {}).get("results") or []
        if r["resources"][0]["name"] == name and (result is None or r["result"] == result)
    ]
    assert len(found) <= 1, f"more than one result for {name}: {found}"
    return found[0] if found else None


def pods(stack: ClusterStack, app: str) -> dict[str, str]:
    """Pod name -> uid, for the Pods of the workload labelled ``app``."""
    out = stack.kubectl("get", "pods", "-n", NS, "-l", f"app={app}", "-o", "json").stdout
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in json.loads(out)["items"]}


def uid_of(stack: ClusterStack, kind: str, name: str) -> str:
    return stack.kubectl("get", kind, name, "-n", NS, "-o", "jsonpath={.metadata.uid}").stdout


def gauge(port: int) -> dict[str, int]:
    """``affidavit_running_workloads`` by result, read from the operator's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = re.findall(r'^affidavit_running_workloads\{result="(\w+)"\} (\S+)$', text, re.M)
    return {k: int(float(v)) for k, v in found}


def reported(stack: ClusterStack) -> dict[str, int]:
    """The summaries of every re-check report in the cluster, added up."""
    out = stack.kubectl("get", "policyreports.wgpolicyk8s.io", "-A", "-l",
                        "affidavit.dev/report=running", "-o", "json").stdout  # fmt: skip
    total = dict.fromkeys(("pass", "fail", "warn", "error", "skip"), 0)
    for item in json.loads(out)["items"]:
        for k in total:
            total[k] += item.get("summary", {}).get(k, 0)
    return total


def metric_matches_reports(stack: ClusterStack, port: int) -> dict[str, int]:
    def same() -> dict[str, int] | None:
        g, r = gauge(port), reported(stack)
        return g if g == r else None

    found: dict[str, int] = wait_for(same, "the gauge to count what the reports say")
    return found


def test_a_tightened_policy_turns_pass_into_fail_and_evicts_nothing(
    stack: ClusterStack, releases: Releases, metrics_port: int
) -> None:
    late = releases.late
    app = "ledger-api"
    manifest = deployment(app, NS, late.image)
    manifest["spec"]["replicas"] = 2
    stack.apply(manifest)
    wait_for(lambda: len(pods(stack, app)) == 2, "the controller manager to create two Pods")
    uid = uid_of(stack, "deployment", app)

    passed = wait_for(lambda: result_for(stack, app, "pass"), "a pass result for the Deployment")
    assert passed["message"] == f"Deployment/{app} runs with the evidence its policies require"
    assert passed["policy"] == f"AccountabilityPolicy/{POLICY}"
    assert passed["source"] == "affidavit"
    # One result per workload, named after the Deployment, not per Pod or ReplicaSet.
    assert passed["resources"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "namespace": NS, "uid": uid}
    ]
    assert [r["resources"][0]["kind"] for r in report(stack)["results"]] == ["Deployment"]  # type: ignore[index]
    # No kubelet: no status.imageID, so the image as the Pod spec writes it.
    assert passed["properties"]["imagesFromSpec"] == late.image
    assert passed["properties"]["outcome"] == "allowed"
    before = pods(stack, app)

    stack.apply(tight(releases))
    failed = wait_for(lambda: result_for(stack, app, "fail"), "the result to turn to fail")
    assert failed["message"] == (
        f"Deployment/{app} runs without the evidence its policies now require "
        "(1 violation; reported, not evicted):\n"
        f"- {review_violation(POLICY, late.image, late.revision, releases.reviewed.revision)}"
    )
    assert (failed["policy"], failed["rule"]) == (
        f"AccountabilityPolicy/{POLICY}",
        "review.critical.independentApprovals",
    )
    assert failed["properties"]["outcome"] == "denied"
    summary = report(stack)["summary"]  # type: ignore[index]
    assert summary == {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0}
    # Nothing evicted: the same Pods (names and uids), the Deployment still asks for two.
    assert pods(stack, app) == before
    assert stack.kubectl("get", "deployment", app, "-n", NS,
                         "-o", "jsonpath={.spec.replicas}").stdout == "2"  # fmt: skip
    counted = metric_matches_reports(stack, metrics_port)
    assert counted["fail"] >= 1


def test_an_exception_about_to_expire_is_a_warning_one_with_time_left_is_skipped(
    stack: ClusterStack, releases: Releases, metrics_port: int
) -> None:
    late = releases.late
    images = [f"{releases.registry_host}/{REPO}*"]
    soon, later = from_now(minutes=30), from_now(days=2)
    for name, until in (("ledger-hotfix", soon), ("ledger-batch", later)):
        exc = exception(f"{name}-exc", NS, images, until)
        exc["spec"]["workloads"] = [{"kind": "Deployment", "name": name}]
        apply_and_sync(stack, exc)
        stack.apply(deployment(name, NS, late.image))  # admitted on the exception

    warned = wait_for(lambda: result_for(stack, "ledger-hotfix", "warn"), "a warn result")
    assert warned["message"] == (
        f"Deployment/ledger-hotfix runs on exception {NS}/ledger-hotfix-exc, which expires at "
        f"{soon}, within the 1h warning window; then it runs without the evidence its "
        "policies require (1 violation; reported, not evicted):\n"
        f"- {review_violation(POLICY, late.image, late.revision, releases.reviewed.revision)}"
    )
    assert warned["properties"]["exception"] == f"{NS}/ledger-hotfix-exc"
    assert warned["properties"]["expiresAt"] == soon
    skipped = wait_for(lambda: result_for(stack, "ledger-batch", "skip"), "a skip result")
    assert skipped["message"] == (
        f"Deployment/ledger-batch runs on exception {NS}/ledger-batch-exc until {later} "
        "(1 violation waived)"
    )
    counted = metric_matches_reports(stack, metrics_port)
    assert counted["warn"] >= 1 and counted["skip"] >= 1


def test_when_the_exception_expires_the_warning_becomes_a_failure(
    stack: ClusterStack, releases: Releases
) -> None:
    """The operator republishes the index without an expired exception; the re-check follows
    at once, not at its next period."""
    late, name = releases.late, "ledger-shortfix"
    exc = exception(f"{name}-exc", NS, [f"{releases.registry_host}/{REPO}*"], from_now(hours=1))
    exc["spec"]["workloads"] = [{"kind": "Deployment", "name": name}]
    apply_and_sync(stack, exc)
    stack.apply(deployment(name, NS, late.image))  # admitted on the exception
    wait_for(lambda: result_for(stack, name, "warn"), "a warn result while the exception runs")
    # Its owner shortens it: it now ends within seconds, by the clock, like any other expiry.
    stack.kubectl("patch", "accountabilityexception", f"{name}-exc", "-n", NS, "--type=merge",
                  "-p", json.dumps({"spec": {"expiresAt": from_now(seconds=3)}}))  # fmt: skip
    failed = wait_for(lambda: result_for(stack, name, "fail"), "a fail once it expired", 180)
    assert failed["message"] == (
        f"Deployment/{name} runs without the evidence its policies now require "
        "(1 violation; reported, not evicted):\n"
        f"- {review_violation(POLICY, late.image, late.revision, releases.reviewed.revision)}"
    )
    assert "exception" not in failed["properties"]


def test_the_digest_the_kubelet_reports_is_the_one_judged(
    stack: ClusterStack, releases: Releases
) -> None:
    """The spec names a tag the webhook pinned to the approved release; the Pod's status (as a
    kubelet writes it) says another digest runs. The re-check judges what runs."""
    reviewed, late = releases.reviewed, releases.late
    image = tag(releases, "recheck-moved", reviewed.digest)
    stack.apply(pod("ledger-moved", NS, image))  # admitted: the approved release
    spec_image = stack.kubectl("get", "pod", "ledger-moved", "-n", NS,
                               "-o", "jsonpath={.spec.containers[0].image}").stdout  # fmt: skip
    assert spec_image == f"{image}@{reviewed.digest}"  # pinned at admission
    passed = wait_for(lambda: result_for(stack, "ledger-moved", "pass"), "a pass for the Pod")
    assert passed["properties"]["imagesFromSpec"] == spec_image
    status = {"containerStatuses": [{
        "name": "api", "image": image, "imageID": f"docker-pullable://{late.image}",
        "ready": True, "restartCount": 0, "started": True,
        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
    }]}  # fmt: skip
    stack.kubectl("patch", "pod", "ledger-moved", "-n", NS, "--subresource=status",
                  "--type=merge", "-p", json.dumps({"status": status}))  # fmt: skip
    running = f"{image}@{late.digest}"
    failed = wait_for(lambda: result_for(stack, "ledger-moved", "fail"), "a fail for the Pod")
    assert failed["message"] == (
        "Pod/ledger-moved runs without the evidence its policies now require "
        "(1 violation; reported, not evicted):\n"
        # the fix attests the digest that runs (the repository, pinned: no tag)
        f"- {review_violation(POLICY, running, late.revision, reviewed.revision)}".replace(
            f"affidavit attest {running}", f"affidavit attest {late.image}"
        )
    )
    assert failed["properties"]["images"] == running
    assert "imagesFromSpec" not in failed["properties"]
    assert failed["resources"][0]["kind"] == "Pod"


def test_a_residency_the_region_adds_turns_pass_into_fail_until_the_registry_is_placed(
    stack: ClusterStack, releases: Releases
) -> None:
    """A regional operator adds a residency to the region a workload already runs in: what
    runs from a registry placed elsewhere is reported (never evicted), and placing the registry
    in the region clears it at the next re-check."""
    reviewed, app, name = releases.reviewed, "where-api", "recheck-residency"
    stack.apply(deployment(app, NS, reviewed.image))
    wait_for(lambda: len(pods(stack, app)) == 1, "the controller manager to create the Pod")
    wait_for(lambda: result_for(stack, app, "pass"), "a pass result for the Deployment")
    before = pods(stack, app)

    def placed_in(location: str) -> dict[str, Any]:
        where = [{"registry": releases.registry_host, "location": location}]
        evidence = {"residency": "us", "registryLocations": where}
        return region_policy(name, ["us-*"], evidence=evidence)

    try:
        stack.apply(placed_in("eu-west-1"))
        failed = wait_for(lambda: result_for(stack, app, "fail"), "the result to turn to fail")
        assert (failed["policy"], failed["rule"]) == (f"RegionPolicy/{name}", "evidence.residency")
        assert (
            f"found {releases.registry_host} keeps the image and its attestations, and is "
            f"declared in eu-west-1 (RegionPolicy/{name})" in failed["message"]
        )
        assert pods(stack, app) == before  # reported, not evicted
        stack.apply(placed_in("us-east-1"))
        wait_for(lambda: result_for(stack, app, "pass"), "a pass once the registry is in the US")
    finally:
        stack.kubectl("delete", "regionpolicy", name, "--ignore-not-found")
        stack.kubectl("delete", "deployment", app, "-n", NS, "--ignore-not-found")


def test_pseudonyms_the_region_asks_for_are_reported_and_the_workload_still_scales(
    stack: ClusterStack, releases: Releases
) -> None:
    """A regional operator starts requiring pseudonymous evidence (the eu preset's GDPR rule)
    where a workload attested with plain names already runs: it is reported, never evicted,
    and scaling it still works (its new Pods are its admitted template's); dropping the rule
    clears the result."""
    reviewed, app, name = releases.reviewed, "who-api", "recheck-pseudonyms"
    stack.apply(deployment(app, NS, reviewed.image))
    wait_for(lambda: len(pods(stack, app)) == 1, "the controller manager to create the Pod")
    wait_for(lambda: result_for(stack, app, "pass"), "a pass result for the Deployment")
    before = pods(stack, app)
    try:
        stack.apply(region_policy(name, ["us-*"], evidence={"pseudonymousIdentities": True}))
        failed = wait_for(lambda: result_for(stack, app, "fail"), "the result to turn to fail")
        assert (failed["policy"], failed["rule"]) == (
            f"RegionPolicy/{name}",
            "evidence.pseudonymousIdentities",
        )
        assert "names people in plain text in" in failed["message"]
        assert pods(stack, app) == before  # reported, not evicted
        stack.kubectl("scale", "deployment", app, "-n", NS, "--replicas=2")
        wait_for(lambda: len(pods(stack, app)) == 2, "the scaled Deployment's second Pod")
        stack.kubectl("delete", "regionpolicy", name)
        wait_for(lambda: result_for(stack, app, "pass"), "a pass once the rule is gone")
    finally:
        stack.kubectl("delete", "regionpolicy", name, "--ignore-not-found")
        stack.kubectl("delete", "deployment", app, "-n", NS, "--ignore-not-found")


def test_deleting_a_workload_removes_its_result_and_the_last_one_the_report(
    stack: ClusterStack, metrics_port: int
) -> None:
    names = [r["resources"][0]["name"] for r in (report(stack) or {}).get("results") or []]
    assert "ledger-api" in names, names
    stack.kubectl("delete", "deployment", "ledger-api", "-n", NS, "--cascade=foreground",
                  "--timeout=60s")  # fmt: skip
    wait_for(lambda: result_for(stack, "ledger-api") is None and report(stack) is not None,
             "the deleted Deployment's result to go")  # fmt: skip
    stack.kubectl("delete", "deployments,pods", "--all", "-n", NS, "--cascade=foreground",
                  "--timeout=60s")  # fmt: skip
    wait_for(lambda: report(stack) is None, "the namespace's report to go with its workloads")
    metric_matches_reports(stack, metrics_port)
