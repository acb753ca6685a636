"""Remembered verdicts (admission.verdicts) on a real webhook's judgement, in-process: real
policy files, a real registry with signed attestations, the real evidence cache. A repeated warm
review gets the remembered verdict under its own id and time; and a remembered verdict never
outlives what it depended on: a changed policy index, an exception that expires by the clock, a
policy that ages provenance by the clock, evidence past its TTL (verified again) are all judged
afresh."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_support import Images, in_process_webhook, review

from affidavit.admission import decide
from affidavit.admission.decide import Webhook
from affidavit.envtest import wait_for
from affidavit.policy.decision import Decision


def _policies(workdir: Path) -> list[dict[str, Any]]:
    """The module's policies (``write_policies``), to change and write elsewhere."""
    return list(yaml.safe_load_all((workdir / "policies" / "policies.yaml").read_text()))


def _write(directory: Path, docs: list[dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "policies.yaml").write_text(yaml.safe_dump_all(docs))


def _webhook(tmp_path: Path, images: Images, **settings: Any) -> Webhook:
    hook = in_process_webhook(tmp_path, tmp_path / "policies", images, **settings)
    hook.policy.start()
    return hook


def _decide(hook: Webhook, image: str, uid: str = "u") -> Decision:
    answer = hook.handle(json.dumps(review(image, uid=uid)).encode())
    assert answer.decision is not None, answer.body
    return answer.decision


def _cache_misses(hook: Webhook) -> float:
    value = hook.metrics.registry.get_sample_value(
        "affidavit_evidence_cache_total", {"result": "miss"}
    )
    return value or 0.0


def _pinned(tag: str, digest: str) -> str:
    return f"{tag.rsplit(':', 1)[0]}@{digest}"


def test_a_repeated_review_gets_the_remembered_verdict_under_its_own_id_and_time(
    tmp_path: Path, images: Images, workdir: Path
) -> None:
    _write(tmp_path / "policies", _policies(workdir))
    hook = _webhook(tmp_path, images)
    bare = _pinned(images.bare, images.bare_digest)
    try:
        first = _decide(hook, bare, uid="first")
        second = _decide(hook, bare, uid="second")
        assert (hook.verdicts.misses, hook.verdicts.hits) == (1, 1)
        assert second.outcome == "denied" and second.id != first.id
        same = dataclasses.replace(second, id=first.id, time=first.time)
        assert same == first
        _decide(hook, _pinned(images.good, images.good_digest))  # another question
        assert (hook.verdicts.misses, hook.verdicts.hits) == (2, 1)
    finally:
        hook.policy.stop()
        hook.close()


def test_a_changed_policy_index_is_judged_afresh(
    tmp_path: Path, images: Images, workdir: Path
) -> None:
    docs = _policies(workdir)
    _write(tmp_path / "policies", docs)
    hook = _webhook(tmp_path, images)
    bare = _pinned(images.bare, images.bare_digest)
    try:
        assert _decide(hook, bare).outcome == "denied"
        before = hook.policy.current()
        for doc in docs:
            if doc["metadata"]["name"] == "strict":
                doc["spec"]["mode"] = "Warn"
                doc["metadata"]["generation"] = 2
        _write(tmp_path / "policies", docs)
        wait_for(lambda: hook.policy.current() is not before, "the new policy index", 30)
        assert _decide(hook, bare).outcome == "warned"
        assert hook.verdicts.hits == 0
    finally:
        hook.policy.stop()
        hook.close()


class _Clock(datetime):
    """The webhook's clock (``decide.datetime``), moved on by the test instead of slept past:
    a loaded machine could take longer than a short expiry to make the first decisions."""

    ahead = timedelta(0)

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _Clock:
        moved = datetime.now(tz) + cls.ahead
        return cls.fromtimestamp(moved.timestamp(), tz)


def test_an_exception_that_expires_by_the_clock_is_never_remembered(
    tmp_path: Path, images: Images, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decide, "datetime", _Clock)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    exception = {
        "apiVersion": "affidavit.dev/v1alpha1",
        "kind": "AccountabilityException",
        "metadata": {"name": "inc-7", "namespace": "shop"},
        "spec": {
            "workloads": [{"kind": "Deployment", "name": "web"}],
            "reason": "outage hotfix",
            "incidentId": "INC-7",
            "owner": "bob@example.com",
            "approvers": ["carol@example.com"],
            "expiresAt": expires.isoformat().replace("+00:00", "Z"),
        },
    }
    _write(tmp_path / "policies", [*_policies(workdir), exception])
    hook = _webhook(tmp_path, images)
    bare = _pinned(images.bare, images.bare_digest)
    try:
        assert _decide(hook, bare).outcome == "excepted"
        assert _decide(hook, bare).outcome == "excepted"
        assert hook.verdicts.hits == 0  # the clock decides when it ends: evaluated each time
        monkeypatch.setattr(_Clock, "ahead", timedelta(hours=2))
        assert _decide(hook, bare).outcome == "denied"
        assert hook.verdicts.hits == 0
    finally:
        hook.policy.stop()
        hook.close()


def test_a_policy_that_ages_provenance_is_never_remembered(
    tmp_path: Path, images: Images, workdir: Path
) -> None:
    docs = _policies(workdir)
    for doc in docs:
        doc["spec"]["require"]["provenance"]["maxAgeDays"] = 3650
    _write(tmp_path / "policies", docs)
    hook = _webhook(tmp_path, images)
    good = _pinned(images.good, images.good_digest)
    try:
        assert _decide(hook, good).outcome == "allowed"
        assert _decide(hook, good).outcome == "allowed"
        assert (hook.verdicts.misses, hook.verdicts.hits) == (2, 0)
    finally:
        hook.policy.stop()
        hook.close()


def test_evidence_past_its_ttl_is_verified_again_and_judged_afresh(
    tmp_path: Path, images: Images, workdir: Path
) -> None:
    _write(tmp_path / "policies", _policies(workdir))
    hook = _webhook(tmp_path, images, evidence_ttl_seconds=60.0)
    # the cache's clock, moved on by the test: a real one-second TTL could run out between
    # the first two reviews on a loaded machine
    ahead = [0.0]
    hook.resolver.cache._clock = lambda: time.monotonic() + ahead[0]
    good = _pinned(images.good, images.good_digest)
    try:
        assert _decide(hook, good).outcome == "allowed"
        assert _decide(hook, good).outcome == "allowed"
        assert hook.verdicts.hits == 1
        misses = _cache_misses(hook)
        ahead[0] = 61.0  # past the evidence TTL: the next review verifies the image again
        assert _decide(hook, good).outcome == "allowed"
        assert _cache_misses(hook) == misses + 1
        assert (hook.verdicts.misses, hook.verdicts.hits) == (2, 1)
    finally:
        hook.policy.stop()
        hook.close()
