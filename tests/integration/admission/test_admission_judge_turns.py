"""One namespace's flood of cold reviews does not take every judging thread.

Cold reviews are judged in threads shared by all namespaces. Before, they were first come, first
served: a namespace sending many reviews that each hold a thread a while (images on a slow
registry a policy covers; dry runs cost their sender nothing) queued ahead of everyone, and a
reviewed image of another namespace, its evidence one lookup away, was denied as late. Now at most ``per_namespace`` of one
namespace's reviews hold a thread at once; the rest of that namespace waits its turn within its
own budget and is denied (never left to the API server's timeout) when none comes.

In-process, against the real registry (a signed attestation) and a registry that answers every
request, after half a second, with 404.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_support import attest_provenance, make_signing, policy, push, review

from affidavit.admission.decide import Answer, Judge, Webhook
from affidavit.admission.pin import Pinner
from affidavit.admission.policy_source import FilePolicySource
from affidavit.admission.resolve import EvidenceResolver
from affidavit.admission.warm import LARGE_BODY, WarmJudge
from affidavit.attestations.evidence_cache import EvidenceCache
from hostile_registries import HostileRegistry, Reply, Seen, hostile_registry

BUDGET = 3.0


BATCH, WAVES = 12, 8
FLOOD = BATCH * WAVES


def _slow_404(_: Seen) -> Reply:
    time.sleep(0.5)
    return Reply(404)


@pytest.fixture(scope="module")
def slow() -> Iterator[HostileRegistry]:
    with hostile_registry(_slow_404) as server:
        yield server


@pytest.fixture(scope="module")
def setup(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("judge-turns")
    host: str = registry.host
    signing = make_signing(work)
    digest = push(host, "turns/good", "1", content=f"good {work}".encode())
    attest_provenance(host, "turns/good", digest, signing)
    docs = [
        policy("named", [f"{host}/turns/*"], signing.public_pem),
        policy("slow", ["*/slow/*"], signing.public_pem),
    ]
    (work / "policies").mkdir()
    (work / "policies" / "p.yaml").write_text(yaml.safe_dump_all(docs))
    return work / "policies", f"{host}/turns/good@{digest}"


def _judging(
    policies: Path, slow: HostileRegistry, per_namespace: int
) -> tuple[Webhook, ThreadPoolExecutor, WarmJudge]:
    """A webhook judging on six threads, ``per_namespace`` of them one namespace's at most."""
    webhook = Webhook(
        judge=Judge(cluster="prod-1", region="eu-west-1", budget_seconds=BUDGET),
        policy=FilePolicySource(policies),
        resolver=EvidenceResolver(
            cache=EvidenceCache(),
            registry_timeout=BUDGET * 0.9,
            insecure_hosts=(slow.host,),
            allowed_hosts=(slow.host,),
        ),
    )
    threads = ThreadPoolExecutor(6)
    return webhook, threads, WarmJudge(webhook, threads, per_namespace=per_namespace)


def _answers(
    setup: tuple[Path, str], slow: HostileRegistry, per_namespace: int
) -> tuple[list[Answer], Answer]:
    """A stream of reviews of namespace "attacker" naming images on the slow registry, and in
    its midst one of namespace "shop" naming the attested image, on six judging threads."""
    policies, good = setup
    webhook, threads, warm = _judging(policies, slow, per_namespace)

    def attack(i: int) -> Awaitable[Answer]:
        body = review(f"{slow.host}/slow/app:{i}", uid=f"a-{i}", namespace="attacker")
        return warm.judge(json.dumps(body).encode())

    release = json.dumps(review(good, uid="v", namespace="shop")).encode()
    try:
        return asyncio.run(_stream(attack, lambda: warm.judge(release)))
    finally:
        threads.shutdown(wait=False)
        webhook.close()


async def _stream(
    attack: Callable[[int], Awaitable[Answer]], release: Callable[[], Awaitable[Answer]]
) -> tuple[list[Answer], Answer]:
    """A steady stream: BATCH attacks every half second, the release a second in."""
    attacks: list[asyncio.Task[Answer]] = []
    for wave in range(WAVES):
        attacks += [asyncio.ensure_future(attack(wave * BATCH + i)) for i in range(BATCH)]
        if wave == 2:
            released = asyncio.ensure_future(release())
        await asyncio.sleep(0.5)
    return list(await asyncio.gather(*attacks)), await released


def _response(answer: Answer) -> dict[str, Any]:
    assert answer.status == 200 and isinstance(answer.body, dict)
    return dict(answer.body["response"])


def test_a_flood_of_one_namespace_leaves_threads_for_the_others(
    setup: tuple[Path, str], slow: HostileRegistry
) -> None:
    attacks, victim = _answers(setup, slow, per_namespace=2)
    assert _response(victim)["allowed"] is True, _response(victim)
    responses = [_response(a) for a in attacks]
    assert not any(r["allowed"] for r in responses)
    # some judged (no image there); the others found no turn within their time and were
    # denied by the webhook, not left to the API server's timeout
    refused = [r for r in responses if r["status"].get("code") == 429]
    assert refused and len(refused) < FLOOD
    assert refused[0]["status"]["message"] == (
        "Affidavit is judging 2 other requests of namespace attacker (the most it judges of one"
        " namespace at once) and none ended within this one's time; retry, or send fewer at once"
    )


def test_first_come_first_served_the_same_flood_starved_the_release(
    setup: tuple[Path, str], slow: HostileRegistry
) -> None:
    # the baseline the turns replace: every thread free to one namespace
    _attacks, victim = _answers(setup, slow, per_namespace=FLOOD)
    response = _response(victim)
    assert response["allowed"] is False
    assert "evidence.budget" in response["status"]["message"]


def _large_review(i: int, image: str) -> bytes:
    body = review(image, uid=f"big-{i}", namespace="bulk")
    spec = body["request"]["object"]["spec"]["template"]["spec"]
    spec["containers"][0]["env"] = [{"name": f"V{k}", "value": "x" * 10} for k in range(40_000)]
    data = json.dumps(body).encode()
    assert len(data) > LARGE_BODY
    return data


def test_large_reviews_are_judged_in_threads_and_do_not_hold_the_others(
    setup: tuple[Path, str],
) -> None:
    """Parsed on the event loop, each multi-megabyte review held it (and tens of MB) while it
    was parsed: eight sent at once all went before a small review sent after them. Now they are
    judged in threads, two at a time, and the small review is answered meanwhile."""
    policies, _good = setup
    webhook = Webhook(
        judge=Judge(cluster="prod-1", region="eu-west-1", budget_seconds=BUDGET),
        policy=FilePolicySource(policies),
        resolver=EvidenceResolver(cache=EvidenceCache()),
    )
    threads = ThreadPoolExecutor(6)
    warm = WarmJudge(webhook, threads)
    uncovered = "registry.example/elsewhere/app:1"  # no policy covers it: judged at once
    bodies = [_large_review(i, uncovered) for i in range(8)]

    async def run() -> tuple[Answer, int]:
        large = [asyncio.create_task(warm.judge(b)) for b in bodies]
        await asyncio.sleep(0)  # each large review starts (inline, it ran to its answer here)
        small = await warm.judge(json.dumps(review(uncovered, uid="small")).encode())
        pending = sum(not t.done() for t in large)
        await asyncio.gather(*large)
        return small, pending

    try:
        small, pending = asyncio.run(run())
    finally:
        threads.shutdown(wait=False)
        webhook.close()
    assert _response(small)["allowed"] is True
    assert pending > 0  # answered while large reviews were still being judged


def _pod_review(image: str, uid: str, namespace: str) -> bytes:
    body = review(image, uid=uid, namespace=namespace, kind="Pod")
    request = body["request"]
    request["kind"] = {"group": "", "version": "v1", "kind": "Pod"}
    request["resource"] = {"group": "", "version": "v1", "resource": "pods"}
    request["object"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": request["name"], "namespace": namespace},
        "spec": request["object"]["spec"]["template"]["spec"],
    }
    return json.dumps(body).encode()


def _pins(
    setup: tuple[Path, str], slow: HostileRegistry, per_namespace: int
) -> tuple[list[Answer], Answer]:
    """The same stream as ``_answers``, of Pods to pin (``/mutate``): the attacker's name tags
    on the slow registry, the release's the attested image's tag."""
    policies, good = setup
    webhook, threads, warm = _judging(policies, slow, per_namespace)
    pinner = Pinner(webhook)
    tag = good.split("@")[0] + ":1"

    def attack(i: int) -> Awaitable[Answer]:
        body = _pod_review(f"{slow.host}/slow/app:{i}", f"a-{i}", "attacker")
        return warm.pin(pinner, body)

    release = _pod_review(tag, "v", "shop")
    try:
        return asyncio.run(_stream(attack, lambda: warm.pin(pinner, release)))
    finally:
        threads.shutdown(wait=False)
        webhook.close()


def _patch(answer: Answer) -> list[dict[str, Any]]:
    response = _response(answer)
    assert response["allowed"] is True, response
    if "patch" not in response:
        return []
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


def test_a_flood_of_pods_to_pin_leaves_threads_for_the_others(
    setup: tuple[Path, str], slow: HostileRegistry
) -> None:
    """``/mutate`` ran on the shared threads first come, first served: one namespace's stream
    of Pod dry runs naming tags on a slow registry held them all, and another namespace's Pod
    was answered unpinned, after its budget (its tag then runs whatever it names later)."""
    _attacks, release = _pins(setup, slow, per_namespace=2)
    digest = setup[1].split("@")[1]
    assert [op["value"].split("@")[1] for op in _patch(release)] == [digest]


def test_first_come_first_served_the_same_flood_left_the_pod_unpinned(
    setup: tuple[Path, str], slow: HostileRegistry
) -> None:
    _attacks, release = _pins(setup, slow, per_namespace=FLOOD)
    assert _patch(release) == []
