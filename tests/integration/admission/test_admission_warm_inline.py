"""Warm reviews judged on the event loop of a real `affidavit webhook serve` (admission.warm).

A review whose every image has cached evidence is judged inline and awaits the ledger writer's
commit; one that needs the registry (first sight of a digest, a tag to resolve) still goes to the
judging threads. Either way the decision is in the ledger before the answer (read here while the
webhook still runs), a dry run is judged the same and not recorded, and a warm review whose
commit is held up past the ledger's wait by another writer's lock is buffered within that wait
and written once the lock is released."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from admission_support import Images, Tls, WebhookProcess, review, start_ledgered_webhook

from affidavit.envtest import wait_for
from affidavit.ledger import BUFFERED_NOTE, Ledger


def _judged(hook: WebhookProcess) -> tuple[float, float]:
    return (
        hook.metric("affidavit_reviews_judged_total", where="inline"),
        hook.metric("affidavit_reviews_judged_total", where="pool"),
    )


def _answer(hook: WebhookProcess, body: dict[str, Any]) -> dict[str, Any]:
    r = hook.validate(body)
    assert r.status_code == 200
    response: dict[str, Any] = r.json()["response"]
    return response


def _link(response: dict[str, Any]) -> tuple[int, str]:
    fields = dict(p.split("=") for p in response["auditAnnotations"]["ledger"].split())
    return int(fields["seq"]), fields["hash"]


def test_warm_reviews_are_judged_inline_and_recorded_before_their_answer(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path
) -> None:
    db = tmp_path / "ledger.db"
    hook = start_ledgered_webhook(
        tmp_path, tls, ledger=f"sqlite:///{db}", policies=workdir / "policies",
        # a loaded machine's commit may take longer than the default second: waited for,
        # not buffered, since what is asserted is the decision durable before its answer
        registry_host=images.host, extra=["--ledger-wait", "5"],
    )  # fmt: skip
    pinned = f"{images.good.rsplit(':', 1)[0]}@{images.good_digest}"
    try:
        cold = _answer(hook, review(pinned, uid="cold"))
        assert cold["allowed"] is True
        assert _judged(hook) == (0, 1)  # first sight of the digest: the registry, in a thread
        ledger = Ledger(f"sqlite:///{db}", read_only=True)
        for i in range(3):
            warm = _answer(hook, review(pinned, uid=f"warm-{i}"))
            assert warm["allowed"] is True and "warnings" not in warm
            record = ledger.get(warm["auditAnnotations"]["decision"])
            assert record is not None  # durable before the answer: read while the hook runs
            assert (record.seq, record.hash) == _link(warm) == (i + 2, record.hash)
        assert _judged(hook) == (3, 1)
        tagged = _answer(hook, review(images.good, uid="tag"))  # a tag: resolved (HEAD) first
        assert tagged["allowed"] is True
        assert _judged(hook) == (3, 2)
        dry = review(pinned, uid="dry")
        dry["request"]["dryRun"] = True
        answer = _answer(hook, dry)
        assert answer["allowed"] is True and "ledger" not in answer["auditAnnotations"]
        assert _judged(hook) == (4, 2)
        denied = _answer(hook, review(f"{images.bare.rsplit(':', 1)[0]}@{images.bare_digest}"))
        assert denied["allowed"] is False  # the policy's checks apply inline as in a thread
        assert ledger.get(denied["auditAnnotations"]["decision"]) is not None
        assert ledger.count() == 6
        assert ledger.verify_chain().ok
    finally:
        hook.stop()


def test_a_warm_review_held_past_the_ledger_wait_is_buffered_then_written(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path
) -> None:
    db = tmp_path / "ledger.db"
    hook = start_ledgered_webhook(
        tmp_path, tls, ledger=f"sqlite:///{db}", policies=workdir / "policies",
        # long enough that the review after the lock is released is written within it on a
        # loaded machine (at 0.3 s a CI run once saw it buffered); the held one waits it out
        registry_host=images.host, extra=["--ledger-wait", "5"],
    )  # fmt: skip
    pinned = f"{images.good.rsplit(':', 1)[0]}@{images.good_digest}"
    try:
        assert "ledger" in _answer(hook, review(pinned, uid="prime"))["auditAnnotations"]
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another writer holds the ledger
        try:
            held = _answer(hook, review(pinned, uid="held"))
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        decision = held["auditAnnotations"]["decision"]
        assert held["allowed"] is True
        assert held["warnings"] == [f"{BUFFERED_NOTE} (decision {decision})"]
        assert _judged(hook) == (1, 1)
        ledger = Ledger(f"sqlite:///{db}", read_only=True)
        wait_for(lambda: ledger.get(decision) is not None, "the buffered decision written", 30)
        buffer = Path(f"{db}-buffer.jsonl")  # emptied once nothing waits in the buffer
        wait_for(lambda: buffer.stat().st_size == 0, "the buffer emptied", 30)
        after = _answer(hook, review(pinned, uid="after"))
        assert "warnings" not in after and "ledger" in after["auditAnnotations"]
        assert ledger.count() == 3
        assert ledger.verify_chain().ok
    finally:
        hook.stop()
