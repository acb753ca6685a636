"""Concurrent reviews on a real `affidavit webhook serve` (uvloop, httptools, TLS keep-alive), as
the kube-apiserver sends them when many writes arrive together: every decision is in the ledger
before its answer (none buffered), each answer names its own place in one intact chain, and an
image pinned by a digest already verified is answered from the evidence cache (a hit, with no
lookup thread and no registry traffic) while the policy's checks still apply."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
from admission_support import Images, Tls, _ctx, review, start_ledgered_webhook

from affidavit.ledger import Ledger


def test_concurrent_reviews_are_each_recorded_before_their_answer(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path
) -> None:
    db = tmp_path / "ledger.db"
    hook = start_ledgered_webhook(
        tmp_path,
        tls,
        ledger=f"sqlite:///{db}",
        policies=workdir / "policies",
        registry_host=images.host,
    )
    repository = images.good.rsplit(":", 1)[0]
    pinned = f"{repository}@{images.good_digest}"
    bare = f"{images.bare.rsplit(':', 1)[0]}@{images.bare_digest}"
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(verify=_ctx(tmp_path / "ca.pem"), timeout=30) as http:
            for i in range(4):  # one kept-alive connection per client
                image = bare if (n + i) % 4 == 0 else pinned
                body = json.dumps(review(image, uid=f"u-{n}-{i}")).encode()
                r = http.post(f"{hook.url}/validate", content=body)
                assert r.status_code == 200
                with lock:
                    answers.append(r.json()["response"])

    try:
        first = hook.validate(review(pinned, uid="u-first")).json()["response"]
        assert first["allowed"] is True  # a miss: fetched and verified once
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert hook.metric("affidavit_evidence_cache_total", result="hit") >= 24
    finally:
        hook.stop()
    assert len(answers) == 32
    assert all("warnings" not in a for a in answers)  # stored, none buffered
    assert sum(a["allowed"] for a in answers) == 24  # the unattested image is still denied
    links = [dict(p.split("=") for p in a["auditAnnotations"]["ledger"].split()) for a in answers]
    assert sorted(int(link["seq"]) for link in links) == list(range(2, 34))
    ledger = Ledger(f"sqlite:///{db}", read_only=True)
    for answer, link in zip(answers, links, strict=True):
        record = ledger.get(answer["auditAnnotations"]["decision"])
        assert record is not None and (record.seq, record.hash) == (int(link["seq"]), link["hash"])
    assert ledger.verify_chain().ok
