"""The operator on a real kube-apiserver says when a valid-looking object cannot do its job
(issue 7, items 17 and 21): an exception for every image (`images: ["*"]`) or every workload
(`workloads: [{name: "*"}]`), one that outlives
the cluster's maximum, or one wider than a repository where a policy says `exceptions.
repositoryOnly`, is Invalid and left out of the published index; a RegionPolicy whose glob
can match no region is Invalid, one for another region says it does not apply here; a policy
whose preset needs a reviewer group that no policy defines, or evidence kept where no RegionPolicy
of the region declares a registry, is not Ready."""

from __future__ import annotations

import datetime
import json
import subprocess
from collections.abc import Callable
from typing import Any

from operator_support import NAMESPACE, RunningOperator, get_json

from affidavit.attestations.pseudonyms import PseudonymKey
from affidavit.envtest import wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
API = "affidavit.dev/v1alpha1"


def apply(kubectl: Kubectl, obj: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def condition(obj: dict[str, Any] | None, kind: str = "Ready") -> dict[str, Any] | None:
    conditions: list[dict[str, Any]] = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), None)


def index(kubectl: Kubectl) -> dict[str, Any]:
    cm = get_json(kubectl, "configmap", "affidavit-policy-index", "-n", NAMESPACE)
    data: dict[str, Any] = json.loads(cm["data"]["index.json"])
    return data


def exception(name: str, images: list[str], expires_at: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AccountabilityException",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "images": images,
            "reason": "checkout outage",
            "incidentId": "INC-77",
            "owner": "alice",
            "approvers": ["bob"],
            "expiresAt": expires_at,
        },
    }


def invalid_exception(kubectl: Kubectl, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get_json(kubectl, "accountabilityexception", name, "-n", NAMESPACE)
        c = condition(obj)
        return obj if c and c["status"] == "False" else None

    obj: dict[str, Any] = wait_for(check, f"{name} to be reported Invalid")
    return obj


def policy_ready(
    kubectl: Kubectl, name: str, ready: bool, why: str, reason: str | None = None
) -> dict[str, Any]:
    """The Ready condition of AccountabilityPolicy ``name``, once its status is ``ready`` (and
    its reason ``reason``, when given)."""

    def check() -> dict[str, Any] | None:
        c = condition(get_json(kubectl, "accountabilitypolicy", name))
        if c is None or c["status"] != str(ready):
            return None
        return c if reason is None or c["reason"] == reason else None

    found: dict[str, Any] = wait_for(check, f"{name} {why}")
    return found


def in_future(**delta: float) -> str:
    t = datetime.datetime.now(datetime.UTC) + datetime.timedelta(**delta)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_exception_for_every_image_is_invalid(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    apply(kubectl, exception("e2e-everything", ["*"], in_future(hours=2)))
    try:
        obj = invalid_exception(kubectl, "e2e-everything")
        expected = (
            "spec: Value error, images[0] '*' must start with literal text (a registry, "
            "repository or name prefix), not a wildcard: an exception for every image switches "
            "the policy off"
        )
        c = condition(obj)
        assert c is not None
        assert (obj["status"]["phase"], c["reason"], c["message"]) == (
            "Invalid",
            "Invalid",
            expected,
        )
        published = index(kubectl)
        assert all(e["name"] != "e2e-everything" for e in published["exceptions"])
        assert published["errors"][f"AccountabilityException/{NAMESPACE}/e2e-everything"] == (
            expected
        )
    finally:
        kubectl("delete", "accountabilityexception", "e2e-everything", "-n", NAMESPACE)


def test_an_exception_for_every_workload_is_invalid(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    """``workloads: [{kind: Deployment, name: "*"}]`` with no images excepts every image of every
    Deployment in the namespace: the policy switched off as surely as ``images: ["*"]``."""
    everything = exception("e2e-every-workload", [], in_future(hours=2))
    del everything["spec"]["images"]
    everything["spec"]["workloads"] = [
        {"kind": "Deployment", "name": "checkout"},
        {"kind": "Deployment", "name": "*"},
    ]
    apply(kubectl, everything)
    try:
        obj = invalid_exception(kubectl, "e2e-every-workload")
        expected = (
            "spec: Value error, workloads[1].name '*' must start with literal text (a workload "
            "name or prefix), not a wildcard: an exception for every workload switches the "
            "policy off"
        )
        c = condition(obj)
        assert c is not None
        assert (obj["status"]["phase"], c["message"]) == ("Invalid", expected)
        published = index(kubectl)
        assert all(e["name"] != "e2e-every-workload" for e in published["exceptions"])
    finally:
        kubectl("delete", "accountabilityexception", "e2e-every-workload", "-n", NAMESPACE)


def test_an_exception_wider_than_one_repository_is_invalid_where_a_policy_says_so(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    """``exceptions.repositoryOnly``: ``registry.example/checkout/*`` would except every
    repository of the team's namespace; the policy asks for one repository an exception."""
    scoped = {
        "apiVersion": API,
        "kind": "AccountabilityPolicy",
        "metadata": {"name": "e2e-repository-only"},
        "spec": {
            "match": {"images": ["registry.example/checkout/*"]},
            "exceptions": {"repositoryOnly": True},
        },
    }
    apply(kubectl, scoped)
    apply(kubectl, exception("e2e-too-wide", ["registry.example/checkout/*"], in_future(hours=2)))
    apply(kubectl, exception("e2e-one-repo", ["registry.example/checkout/api"], in_future(hours=2)))
    try:
        obj = invalid_exception(kubectl, "e2e-too-wide")
        c = condition(obj)
        assert c is not None
        assert (obj["status"]["phase"], c["message"]) == (
            "Invalid",
            "spec.images: registry.example/checkout/* cover(s) more than one repository, and "
            "AccountabilityPolicy/e2e-repository-only allows exceptions only for one repository "
            "each (exceptions.repositoryOnly); name the repository, with a wildcard at most in "
            "the tag or digest (REGISTRY/REPOSITORY or REGISTRY/REPOSITORY:*)",
        )

        def published() -> set[str] | None:
            names = {e["name"] for e in index(kubectl)["exceptions"]}
            return names if "e2e-one-repo" in names else None

        assert "e2e-too-wide" not in wait_for(published, "the narrow exception in the index")
    finally:
        for name in ("e2e-too-wide", "e2e-one-repo"):
            kubectl("delete", "accountabilityexception", name, "-n", NAMESPACE)
        kubectl("delete", "accountabilitypolicy", "e2e-repository-only")


def test_an_exception_longer_than_the_cluster_maximum_is_invalid(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    expires = in_future(days=30)
    apply(kubectl, exception("e2e-too-long", ["registry.example/checkout*"], expires))
    try:
        obj = invalid_exception(kubectl, "e2e-too-long")
        created = obj["metadata"]["creationTimestamp"]
        start = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00"))
        days, rest = divmod(int((end - start).total_seconds()), 86400)
        lasts = f"{days} days" + (f" {rest // 3600} hours" if rest // 3600 else "")
        latest = (start + datetime.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        c = condition(obj)
        assert c is not None
        assert (obj["status"]["phase"], c["reason"]) == ("Invalid", "Invalid")
        assert c["message"] == (
            f"spec.expiresAt: the exception lasts {lasts} (creationTimestamp {created} to "
            f"expiresAt {expires}); cluster setting exceptionMaxDays allows at most 7 days; "
            f"set expiresAt no later than {latest}"
        )
        assert all(e["name"] != "e2e-too-long" for e in index(kubectl)["exceptions"])
    finally:
        kubectl("delete", "accountabilityexception", "e2e-too-long", "-n", NAMESPACE)


def test_region_policies_say_whether_they_can_apply(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    for name, regions in (("e2e-upper", ["EU-*"]), ("e2e-us", ["us-*"])):
        apply(
            kubectl,
            {"apiVersion": API, "kind": "RegionPolicy", "metadata": {"name": name},
             "spec": {"regions": regions, "jurisdictions": ["soc2"]}},
        )  # fmt: skip
    try:
        upper = wait_for(
            lambda: condition(get_json(kubectl, "regionpolicy", "e2e-upper")),
            "e2e-upper to get a Ready condition",
        )
        assert (upper["status"], upper["reason"], upper["message"]) == (
            "False",
            "Invalid",
            "spec.regions: Value error, regions[0] 'EU-*' can match no region: region names are "
            "lower-case letters, digits and '-' (e.g. eu-west-1), globs may add * ? [...]",
        )
        us = wait_for(
            lambda: condition(get_json(kubectl, "regionpolicy", "e2e-us"), "AppliesToThisCluster"),
            "e2e-us to say whether it applies",
        )
        assert (us["status"], us["reason"], us["message"]) == (
            "False",
            "OtherRegion",
            "regions us-* do not include this cluster's region eu-west-1: it has no effect here",
        )
        ready = condition(get_json(kubectl, "regionpolicy", "e2e-us"))
        assert ready is not None and ready["status"] == "True"
    finally:
        kubectl("delete", "regionpolicy", "e2e-upper", "e2e-us", "--ignore-not-found")


def test_a_preset_needing_an_undefined_group_or_undeclared_registries_is_not_ready(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    """eu-ai-act-high-risk needs an `oversight` approver and (through eu) evidence kept in the
    EU that names people by pseudonyms. With no group and no registry declared in eu, every
    image it covers is denied: the status says both. A group of logins matches no pseudonymous
    approver: the status says that too, and turns Ready once the group lists a pseudonym and a
    RegionPolicy of this region (eu-west-1) says where its registry stores data."""
    apply(
        kubectl,
        {"apiVersion": API, "kind": "AccountabilityPolicy", "metadata": {"name": "e2e-oversight"},
         "spec": {"match": {"images": ["registry.example/e2e-oversight/*"]},
                  "jurisdictions": ["eu-ai-act-high-risk"]}},
    )  # fmt: skip
    residency = (
        "preset/eu evidence.residency needs images from registries located in eu, and no "
        "RegionPolicy that applies in region eu-west-1 declares one: every image it covers is "
        "denied; declare where this region's registries store data in a RegionPolicy's "
        "evidence.registryLocations"
    )
    try:
        c = policy_ready(kubectl, "e2e-oversight", False, "to be reported")
        assert (c["reason"], c["message"]) == (
            "GroupUndefined",
            "compiled and enforced, but preset/eu-ai-act-high-risk tiers.*.reviewerGroups needs "
            "an approver from `oversight`, and no AccountabilityPolicy or RegionPolicy defines "
            "it: every change that rule covers is denied; define the group in spec.groups "
            f"(members' logins or emails); and {residency}",
        )
        assert any(p["name"] == "e2e-oversight" for p in index(kubectl)["policies"])
        kubectl("patch", "accountabilitypolicy", "e2e-oversight", "--type=merge",
                "-p", json.dumps({"spec": {"groups": {"oversight": ["olga"]}}}))  # fmt: skip
        # the eu preset has the evidence name people by pseudonyms: a login matches no one
        plain = (
            "preset/eu-ai-act-high-risk tiers.*.reviewerGroups needs an approver from "
            "`oversight`, whose members are listed by login or email, while preset/eu has the "
            "evidence name people only by pseudonyms: no approval can match them, so every "
            "change that rule covers is denied; list the members' pseudonyms in spec.groups "
            "(`affidavit pseudonym of --key <pseudonym key> LOGIN...`)"
        )
        c = policy_ready(
            kubectl, "e2e-oversight", False, "to name the residency", "ResidencyUndeclared"
        )
        assert c["message"] == f"compiled and enforced, but {residency}; and {plain}"

        def region_policy(name: str, regions: list[str]) -> dict[str, Any]:
            where = [{"registry": "registry.example", "location": "eu"}]
            return {"apiVersion": API, "kind": "RegionPolicy", "metadata": {"name": name},
                    "spec": {"regions": regions, "evidence": {"registryLocations": where}}}  # fmt: skip

        # a RegionPolicy of another region declares nothing here
        apply(kubectl, region_policy("e2e-apac-registries", ["ap-*"]))
        wait_for(
            lambda: condition(get_json(kubectl, "regionpolicy", "e2e-apac-registries")),
            "e2e-apac-registries to be reconciled",
        )
        c = policy_ready(kubectl, "e2e-oversight", False, "to stay not ready")
        assert c["reason"] == "ResidencyUndeclared"
        apply(kubectl, region_policy("e2e-eu-registries", ["eu-*"]))
        c = policy_ready(kubectl, "e2e-oversight", False, "to name only the plain group",
                         "GroupNotPseudonymous")  # fmt: skip
        assert c["message"] == f"compiled and enforced, but {plain}"
        olga = PseudonymKey(b"the e2e pipeline's pseudonym key, 32 bytes").of("olga")
        kubectl("patch", "accountabilitypolicy", "e2e-oversight", "--type=merge",
                "-p", json.dumps({"spec": {"groups": {"oversight": [olga]}}}))  # fmt: skip
        policy_ready(kubectl, "e2e-oversight", True, "to be Ready once the group is pseudonymous")
        placed = get_json(kubectl, "regionpolicy", "e2e-eu-registries")
        assert placed["status"]["compiled"]["evidence"] == ["registry.example stores data in eu"]
    finally:
        kubectl("delete", "accountabilitypolicy", "e2e-oversight", "--ignore-not-found")
        kubectl("delete", "regionpolicy", "e2e-apac-registries", "e2e-eu-registries",
                "--ignore-not-found")  # fmt: skip


def test_a_keyless_signer_a_strangers_workflow_also_matches_is_not_ready(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    """``acme.*`` does not end the owner's name: anyone can create ``acme-intruder`` on
    github.com, and the public Fulcio certifies its workflows. The policy stays in force as
    written (nothing changes at admission); its status names a subject it would trust."""
    github = "https://token.actions.githubusercontent.com"

    def signed_by(pattern: str) -> dict[str, Any]:
        return {"apiVersion": API, "kind": "AccountabilityPolicy",
                "metadata": {"name": "e2e-keyless-org"},
                "spec": {"match": {"images": ["registry.example/e2e-keyless-org/*"]},
                         "signers": {"keyless": [{"name": "acme-release", "issuer": github,
                                                  "subjectRegExp": pattern}]}}}  # fmt: skip

    apply(kubectl, signed_by(r"https://github\.com/acme.*"))
    try:
        c = policy_ready(kubectl, "e2e-keyless-org", False, "to be reported")
        assert (c["reason"], c["message"]) == (
            "SignerTooBroad",
            "compiled and enforced, but keyless signer acme-release's subjectRegExp "
            rf"https://github\.com/acme.* (issuer {github}) also matches "
            "https://github.com/acme-intruder/app/.github/workflows/release.yml@refs/heads/main, "
            "a workflow of an owner anyone can create on github.com: end the owner's name with "
            r"a `/` in the pattern (`https://github\.com/acme/…`)",
        )
        assert any(p["name"] == "e2e-keyless-org" for p in index(kubectl)["policies"])
        apply(kubectl, signed_by(r"https://github\.com/acme/.+"))
        policy_ready(kubectl, "e2e-keyless-org", True, "to be Ready once the owner ends with /")
    finally:
        kubectl("delete", "accountabilitypolicy", "e2e-keyless-org", "--ignore-not-found")


def test_an_exception_with_a_port_in_other_digits_does_not_stop_the_index(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    """A registry port written in other Unicode digits (``²``, ``٥``) once raised ValueError
    out of the reference grammar: one such exception, which any namespace that may hold
    exceptions can create, made every reconcile fail, so no later policy, exception or
    revocation reached the webhook. It is an image glob that names no registry now: the
    index is published, the exceptions judged like any other."""
    apply(kubectl, exception("e2e-odd-port", ["registry.example:²/x"], in_future(hours=2)))
    apply(kubectl, exception("e2e-after-odd-port", ["registry.example/ok*"], in_future(hours=2)))
    try:

        def published() -> set[str]:
            now = index(kubectl)
            seen = {e["name"] for e in now["exceptions"]}
            seen |= {key.rsplit("/", 1)[-1] for key in now["errors"]}
            return seen

        # Both were read and judged (in force, or Invalid with their reason).
        wait_for(
            lambda: {"e2e-after-odd-port", "e2e-odd-port"} <= published(),
            "the index with the exception after the odd port",
        )
    finally:
        kubectl("delete", "accountabilityexception", "e2e-odd-port", "-n", NAMESPACE)
        kubectl("delete", "accountabilityexception", "e2e-after-odd-port", "-n", NAMESPACE)


def test_a_flood_of_exceptions_cannot_stop_the_index(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    """Exceptions as large as the schema lets them be, more than a ConfigMap carries: before,
    every publish failed (the ConfigMap would pass 1 MiB) and the webhook kept its last index,
    so a policy made after the flood never reached it. Now the oldest exceptions that fit stay
    in force, the newest are Invalid and say why, and the later policy is published."""
    governing = {
        "apiVersion": API, "kind": "AccountabilityPolicy", "metadata": {"name": "e2e-flooded"},
        "spec": {"match": {"images": ["registry.example/e2e-flood/*"]}},
    }  # fmt: skip
    apply(kubectl, governing)
    names = [f"e2e-flood-{i:02d}" for i in range(64)]
    try:
        for i, name in enumerate(names):
            big = exception(
                name,
                [f"registry.example/e2e-flood/{i:02d}-{j:02d}-{'x' * 460}*" for j in range(32)],
                in_future(hours=2),
            )
            big["spec"]["reason"] = "r" * 2048
            big["metadata"]["labels"] = {"e2e": "flood"}
            apply(kubectl, big)
        apply(kubectl, {**governing, "metadata": {"name": "e2e-after-flood"}})

        def published() -> dict[str, Any] | None:
            now = index(kubectl)
            return now if any(p["name"] == "e2e-after-flood" for p in now["policies"]) else None

        now = wait_for(published, "the policy made after the flood in the published index")
        cm = get_json(kubectl, "configmap", "affidavit-policy-index", "-n", NAMESPACE)
        assert len(cm["data"]["index.json"].encode()) <= 900 * 1024
        kept = sorted(e["name"] for e in now["exceptions"] if e["name"] in names)
        assert 0 < len(kept) < len(names)
        newest = invalid_exception(kubectl, names[-1])
        c = condition(newest)
        assert c is not None
        assert c["message"].startswith("left out of the published policy index: with every")
        assert "ResourceQuota on count/accountabilityexceptions.affidavit.dev" in c["message"]
        oldest = condition(get_json(kubectl, "accountabilityexception", names[0], "-n", NAMESPACE))
        assert names[0] in kept and oldest is not None and oldest["status"] == "True"
    finally:
        kubectl("delete", "accountabilityexception", "-l", "e2e=flood", "-n", NAMESPACE)
        kubectl("delete", "accountabilitypolicy", "e2e-flooded", "e2e-after-flood",
                "--ignore-not-found")  # fmt: skip
