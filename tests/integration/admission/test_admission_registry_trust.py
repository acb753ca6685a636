"""What a request cannot make the webhook do: contact a registry no policy names, take the
fail-open path with a problem of its own making, or starve another namespace's lookups.

The webhook runs in-process (``Webhook.handle``) against the real registry with real signed
attestations, policy files, real Secret objects for imagePullSecrets, and hostile registries on
loopback (one that records what it receives, one that accepts and stalls). Outcomes are
asserted, never times.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_support import attest_provenance, make_signing, policy, push, review

from affidavit.admission.decide import Answer, Judge, Webhook
from affidavit.admission.policy_source import FilePolicySource
from affidavit.admission.resolve import EvidenceResolver
from affidavit.admission.review import AdmissionResponse
from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.policy.decision import Decision
from hostile_registries import (
    Behaviour,
    Reply,
    Seen,
    hostile_registry,
    manifest,
    stalling_registry,
)


@dataclass(frozen=True)
class Setup:
    policies: Path
    good: str  # REGISTRY/named/good:1, attested; the registry is named by policy "named"
    host: str


class Secrets:
    """Secret objects as the API server returns them (values base64), by namespace and name."""

    def __init__(self, objects: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
        self.objects = objects

    def read_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.objects.get((namespace, name))


SECRETS = Secrets(
    {
        ("shop", "not-docker"): {
            "type": "Opaque",
            "data": {"password": base64.b64encode(b"hunter2").decode()},
        }
    }
)


@pytest.fixture(scope="module")
def setup(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    work = tmp_path_factory.mktemp("registry-trust")
    host: str = registry.host
    signing = make_signing(work)
    digest = push(host, "named/good", "1", content=f"good {work}".encode())
    attest_provenance(host, "named/good", digest, signing)
    docs = [
        # names its registry: contacted without any allow-list; fails open when unavailable
        policy(
            "named", [f"{host}/named/*"], signing.public_pem, require={"failurePolicy": "Ignore"}
        ),
        # a glob that starts with a wildcard names no registry
        policy("lenient", ["*/lenient/*"], signing.public_pem, require={"failurePolicy": "Ignore"}),
    ]
    (work / "policies").mkdir()
    (work / "policies" / "policies.yaml").write_text(yaml.safe_dump_all(docs))
    return Setup(work / "policies", f"{host}/named/good:1", host)


def make_webhook(
    setup: Setup,
    *,
    allowed: tuple[str, ...] = (),
    secrets: Secrets = SECRETS,
    budget: float = 20.0,  # a margin for a loaded machine; the budget tests pass their own
    registry_timeout: float = 10.0,
    workers: int = 16,
) -> Webhook:
    resolver = EvidenceResolver(
        cache=EvidenceCache(),
        secrets=secrets,
        registry_timeout=registry_timeout,
        allowed_hosts=allowed,
    )
    return Webhook(
        judge=Judge(cluster="prod-1", region="eu-west-1", budget_seconds=budget),
        policy=FilePolicySource(setup.policies),
        resolver=resolver,
        workers=workers,
    )


@pytest.fixture
def webhook(setup: Setup) -> Iterator[Webhook]:
    hook = make_webhook(setup)
    yield hook
    hook.close()


def judge(hook: Webhook, body: dict[str, Any]) -> tuple[AdmissionResponse, Decision | None]:
    answer: Answer = hook.handle(json.dumps(body).encode())
    assert answer.status == 200
    assert isinstance(answer.body, dict)
    return answer.body["response"], answer.decision


def found(decision: Decision | None) -> list[tuple[str, str, str]]:
    assert decision is not None
    return [(v.rule, v.policy, v.found) for v in decision.violations]


def test_a_registry_no_policy_names_is_never_contacted(webhook: Webhook) -> None:
    with hostile_registry(manifest) as stranger:
        image = f"{stranger.host}/lenient/app:1"
        response, decision = judge(webhook, review(image))
        assert stranger.seen == []
    assert response["allowed"] is False  # missing evidence: the policy's Ignore does not apply
    assert found(decision) == [
        (
            "evidence.missing",
            "AccountabilityPolicy/lenient",
            f"missing evidence: registry {stranger.host} is not one the webhook contacts (no "
            "AccountabilityPolicy's match.images names it and registry.allowedHosts does not "
            "list it)",
        )
    ]
    assert decision is not None
    assert decision.violations[0].fix == (
        "deploy the image from a registry a policy names, or add the registry to "
        "registry.allowedHosts"
    )


def test_an_allow_listed_registry_is_contacted(setup: Setup) -> None:
    with hostile_registry(manifest) as listed:
        hook = make_webhook(setup, allowed=(listed.host,))
        try:
            judge(hook, review(f"{listed.host}/lenient/app:1"))
        finally:
            hook.close()
        assert [s.path for s in listed.seen][:1] == ["/v2/lenient/app/manifests/1"]


def test_a_registry_a_policy_names_needs_no_allow_list(webhook: Webhook, setup: Setup) -> None:
    response, decision = judge(webhook, review(setup.good))
    assert response["allowed"] is True
    assert found(decision) == []


def test_a_bad_pull_secret_is_missing_evidence_not_an_outage(
    webhook: Webhook, setup: Setup
) -> None:
    body = review(setup.good)
    pod = body["request"]["object"]["spec"]["template"]["spec"]
    pod["imagePullSecrets"] = [{"name": "not-docker"}]
    response, decision = judge(webhook, body)
    assert response["allowed"] is False  # under failurePolicy Ignore it was admitted before
    assert found(decision) == [
        (
            "evidence.missing",
            "AccountabilityPolicy/named",
            "missing evidence: imagePullSecret shop/not-docker has type 'Opaque' without "
            "registry credentials",
        )
    ]
    assert decision is not None
    assert decision.violations[0].fix == (
        "use `kubectl create secret docker-registry` (type kubernetes.io/dockerconfigjson)"
    )


def test_more_images_than_the_cap_is_denied(webhook: Webhook, setup: Setup) -> None:
    images = [f"{setup.host}/named/app{i}:1" for i in range(65)]
    response, decision = judge(webhook, review(*images, uid="u-many"))
    assert decision is None  # refused before any lookup
    assert response == {
        "uid": "u-many",
        "allowed": False,
        "status": {
            "code": 403,
            "message": "the Deployment names 65 distinct images, more than the 64 the webhook "
            "judges per request; split it into smaller workloads or raise "
            "webhook.maxImagesPerRequest (--max-images-per-request)",
            "reason": "Forbidden",
        },
    }
    response, _ = judge(webhook, review(*images[:64], *images[:64]))
    assert response["allowed"] is False and "distinct images" not in str(response)


def test_running_out_of_budget_never_fails_open(setup: Setup) -> None:
    with stalling_registry() as slow:
        hook = make_webhook(setup, allowed=(slow.host,), budget=1.0, registry_timeout=10.0)
        try:
            image = f"{slow.host}/lenient/app:1"
            response, decision = judge(hook, review(image))
        finally:
            hook.close()
    assert response["allowed"] is False
    assert found(decision) == [
        (
            "evidence.budget",
            "AccountabilityPolicy/lenient",
            f"evidence lookup for {image} exceeded the 1s budget",
        )
    ]


def test_a_registry_that_times_out_on_its_own_is_unavailable(setup: Setup) -> None:
    with stalling_registry() as down:
        hook = make_webhook(setup, allowed=(down.host,), registry_timeout=1.0)
        try:
            image = f"{down.host}/lenient/app:1"
            response, decision = judge(hook, review(image))
        finally:
            hook.close()
    assert response["allowed"] is True  # the registry itself is down and the policy says Ignore
    assert found(decision) == [
        (
            "evidence.unavailable",
            "AccountabilityPolicy/lenient",
            f"registry {down.host} is unreachable",
        )
    ]


def lenient_image_on(
    behaviour: Behaviour, setup: Setup
) -> tuple[str, AdmissionResponse, Decision | None]:
    """A lenient (failurePolicy: Ignore) image on a registry that answers with ``behaviour``,
    judged by a webhook allowed to reach it: the registry's host, the answer, the decision."""
    with hostile_registry(behaviour) as registry:
        hook = make_webhook(setup, allowed=(registry.host,))
        try:
            return registry.host, *judge(hook, review(f"{registry.host}/lenient/app:1"))
        finally:
            hook.close()


THROTTLED = json.dumps(
    {"errors": [{"code": "TOOMANYREQUESTS", "message": "You have reached your pull rate limit"}]}
).encode()


def test_a_throttled_account_is_not_an_outage(setup: Setup) -> None:
    """HTTP 429 is the registry up and answering, about an account the request may choose (a
    spent one listed first among its imagePullSecrets): the policy's failurePolicy: Ignore does
    not admit on it, as it would on an outage."""
    host, response, decision = lenient_image_on(
        lambda _req: Reply(429, {"Retry-After": "3600"}, THROTTLED), setup
    )
    assert response["allowed"] is False
    assert found(decision) == [
        (
            "evidence.missing",
            "AccountabilityPolicy/lenient",
            f"missing evidence: registry {host} answered HTTP 429 to HEAD for {host}/lenient/app "
            "(throttled: an answer, not an outage, so no policy's failurePolicy: Ignore admits "
            "on it)",
        )
    ]
    assert decision is not None
    assert decision.violations[0].fix == (
        "retry once the registry's limit resets, or pull with an account (an imagePullSecret) "
        "whose limit is not spent"
    )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def docker_secret(host: str, user: str, password: str) -> dict[str, Any]:
    """A kubernetes.io/dockerconfigjson Secret as the API server returns it."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    return {
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config).decode()},
    }


def test_the_next_pull_secret_is_tried_where_the_registry_refuses_or_throttles_one(
    setup: Setup,
) -> None:
    """As the kubelet pulls: a workload's pull secrets for the image's registry in its order,
    the next where the registry refuses (a stale password during a rotation) or throttles (a
    spent account) the last. Before, the first alone was used: a rotation's stale secret listed
    first was a denial, a spent account listed first was (as an outage) a way to fail open."""
    fresh, stale, spent = basic("ci", "fresh"), basic("ci", "old"), basic("free", "spent")

    def behaviour(req: Seen) -> Reply:
        if req.authorization == fresh:
            return manifest(req)
        if req.authorization == spent:
            return Reply(429, {}, THROTTLED)
        return Reply(401, {"WWW-Authenticate": 'Basic realm="registry"'})

    with hostile_registry(behaviour) as registry:
        host = registry.host
        secrets = Secrets(
            {
                ("shop", "stale"): docker_secret(host, "ci", "old"),
                ("shop", "spent"): docker_secret(host, "free", "spent"),
                ("shop", "fresh"): docker_secret(host, "ci", "fresh"),
            }
        )
        hook = make_webhook(setup, allowed=(host,), secrets=secrets)
        image = f"{host}/lenient/app:1"

        def judged_with(*names: str) -> list[tuple[str, str, str]]:
            body = review(image)
            pod = body["request"]["object"]["spec"]["template"]["spec"]
            pod["imagePullSecrets"] = [{"name": n} for n in names]
            registry.seen.clear()
            return found(judge(hook, body)[1])

        try:
            for first in ("stale", "spent"):
                problems = judged_with(first, "fresh")
                sent = list(
                    dict.fromkeys(s.authorization for s in registry.seen if s.authorization)
                )
                assert sent == [stale if first == "stale" else spent, fresh]
                # judged on what the registry holds (no attestations), not on the first secret
                assert all("refused" not in text and "429" not in text for *_, text in problems)
                assert problems
            problems = judged_with("stale", "spent")
            assert problems == [
                (
                    "evidence.missing",
                    "AccountabilityPolicy/lenient",
                    f"missing evidence: registry {host} refused access to {host}/lenient/app "
                    "(HTTP 401)",
                )
            ]
            sent = list(dict.fromkeys(s.authorization for s in registry.seen if s.authorization))
            assert sent == [stale, spent]
        finally:
            hook.close()


def test_a_registry_failing_on_its_own_is_unavailable(setup: Setup) -> None:
    """HTTP 503 is the registry's own trouble, whoever asks: the policy's Ignore admits, with
    the warning naming it."""
    host, response, decision = lenient_image_on(lambda _req: Reply(503, {}, b""), setup)
    assert response["allowed"] is True
    assert found(decision) == [
        ("evidence.unavailable", "AccountabilityPolicy/lenient", f"registry {host} is unreachable")
    ]


def test_a_flood_from_one_namespace_does_not_starve_another(setup: Setup) -> None:
    """Dry-run Pods with many images on a stalled registry in `flood`; a reviewed image in
    `shop` is still judged on its evidence, and the flood's queued lookups never run."""
    with stalling_registry() as slow:
        hook = make_webhook(setup, allowed=(slow.host,), workers=4, budget=8.0)
        try:
            flood: list[AdmissionResponse] = []

            def send(n: int) -> None:
                images = [f"{slow.host}/lenient/app{n}-{i}:1" for i in range(20)]
                body = review(*images, uid=f"u-flood-{n}", namespace="flood", name=f"f{n}")
                body["request"]["dryRun"] = True
                flood.append(judge(hook, body)[0])

            threads = [threading.Thread(target=send, args=(n,)) for n in range(3)]
            for t in threads:
                t.start()
            for _ in range(3000):  # until the flood is queued (bounded, not timed)
                if sum(hook._scheduler.queued().values()) >= 40:
                    break
                threading.Event().wait(0.01)
            else:
                raise AssertionError("the flood was never queued")
            response, decision = judge(hook, review(setup.good, namespace="shop"))
            for t in threads:
                t.join()
            assert response["allowed"] is True
            assert found(decision) == []
            assert [r["allowed"] for r in flood] == [False, False, False]
            # one lookup thread per namespace: each flood request ran at most one of its 20
            # lookups; the rest were cancelled with the budget and never dialled the registry
            assert slow.accepted <= 3
        finally:
            hook.close()
