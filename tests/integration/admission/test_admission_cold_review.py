"""A cold review handed from the event loop to a thread without being parsed again
(``Webhook.prepare(warm_only=True)`` raising ``ColdReview``, then ``Webhook.finish``).

In-process against the real registry with a real signed attestation and policy files: the review
left at its evidence stage carries its uid, canonical images and decision id; ``finish`` judges,
records (the SQLite ledger) and answers it as ``handle`` would, after which the digest is warm;
and its time budget runs from the review's arrival, not from when a thread took it up (a lookup
that could only start after the budget is denied as late, never admitted).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_support import attest_provenance, make_signing, policy, push, review

from affidavit.admission.decide import UNAUTHENTICATED, ColdReview, Judge, Judged, Webhook
from affidavit.admission.policy_source import FilePolicySource
from affidavit.admission.resolve import EvidenceResolver
from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.ledger import BufferedLedger, Ledger


@pytest.fixture(scope="module")
def pinned(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("cold-review")
    host: str = registry.host
    signing = make_signing(work)
    digest = push(host, "cold/app", "1", content=f"cold {work}".encode())
    attest_provenance(host, "cold/app", digest, signing)
    (work / "policies").mkdir()
    doc = policy("cold", [f"{host}/cold/*"], signing.public_pem)
    (work / "policies" / "p.yaml").write_text(yaml.safe_dump(doc))
    return work / "policies", f"{host}/cold/app@{digest}"


@pytest.fixture
def webhook(pinned: tuple[Path, str], tmp_path: Path) -> Iterator[Webhook]:
    hook = Webhook(
        judge=Judge(cluster="prod-1", region="eu-west-1", budget_seconds=20.0),
        policy=FilePolicySource(pinned[0]),
        resolver=EvidenceResolver(cache=EvidenceCache()),
        ledger=BufferedLedger(Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")),
    )
    yield hook
    hook.close()


def _cold(hook: Webhook, body: dict[str, Any], started: float) -> ColdReview:
    with pytest.raises(ColdReview) as raised:
        hook.prepare(json.dumps(body).encode(), started, UNAUTHENTICATED, warm_only=True)
    return raised.value


def test_a_cold_review_is_finished_from_its_evidence_stage(
    webhook: Webhook, pinned: tuple[Path, str]
) -> None:
    image = pinned[1]
    cold = _cold(webhook, review(image, uid="u-cold"), time.monotonic())
    unjudged = cold.unjudged
    assert (unjudged.req.uid, unjudged.ctx.images) == ("u-cold", (image,))
    answer = webhook.finish(unjudged)
    assert isinstance(answer.body, dict)
    response = answer.body["response"]
    assert (response["uid"], response["allowed"]) == ("u-cold", True)
    assert response["auditAnnotations"]["decision"] == unjudged.decision_id
    assert webhook.ledger is not None
    record = webhook.ledger.ledger.get(unjudged.decision_id)
    assert record is not None and record.outcome == "allowed"
    warm = webhook.prepare(
        json.dumps(review(image, uid="u-warm")).encode(),
        time.monotonic(),
        UNAUTHENTICATED,
        warm_only=True,
    )
    assert isinstance(warm, Judged) and warm.decision.outcome == "allowed"


def test_the_budget_of_a_finished_review_runs_from_its_arrival(
    webhook: Webhook, pinned: tuple[Path, str]
) -> None:
    arrived = time.monotonic() - webhook.judge.budget_seconds - 1  # spent before a thread took it
    answer = webhook.finish(_cold(webhook, review(pinned[1], uid="u-late"), arrived).unjudged)
    assert isinstance(answer.body, dict)
    response = answer.body["response"]
    assert response["allowed"] is False
    assert answer.decision is not None
    assert [v.rule for v in answer.decision.violations] == ["evidence.budget"]
