"""The registry stopped, and the registry hung, under a real `affidavit webhook serve`.

A registry of the test's own (Debian's docker-registry on 127.0.0.1) is stopped outright
(connections refused) or frozen with SIGSTOP (the kernel still accepts connections into its
backlog, nothing ever answers: a hung registry). Throughout, a digest whose evidence the webhook
has verified keeps deciding from its cache; a tag (it must be resolved) fails closed naming the
registry, or opens with a warning where the policy says ``failurePolicy: Ignore``; every review is
answered before the apiserver's timeout; once the registry is back, the tag is admitted again,
and every answered decision is in the ledger with the chain intact.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from admission_support import (
    Tls,
    attest_provenance,
    make_signing,
    push,
    review,
    start_ledgered_webhook,
    write_policies,
)
from fault_support import BUDGET_ARGS, Apiserver, assert_all_recorded

from affidavit.demo.services import LocalRegistry
from affidavit.ledger import Ledger


@dataclass(frozen=True)
class Own:
    registry: LocalRegistry
    port: int
    good: str  # strict/good:1, attested
    pinned_good: str  # strict/good@sha256:..., attested
    lenient: str  # lenient/bare:1, no attestations, policy fails open


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Own]:
    registry = LocalRegistry(tmp_path / "registry").start()
    try:
        host = registry.host
        signing = make_signing(tmp_path)
        write_policies(tmp_path / "policies", signing.public_pem)
        good = push(host, "strict/good", "1", content=f"good {tmp_path}".encode())
        attest_provenance(host, "strict/good", good, signing)
        push(host, "lenient/bare", "1", content=f"lenient {tmp_path}".encode())
        yield Own(
            registry,
            int(host.rsplit(":", 1)[1]),
            f"{host}/strict/good:1",
            f"{host}/strict/good@{good}",
            f"{host}/lenient/bare:1",
        )
    finally:
        registry.stop()


def _during_the_outage(api: Apiserver, own: Own, tag: str) -> None:
    host = own.registry.host
    cached = api.send(review(own.pinned_good, uid=f"{tag}-cached"))
    assert cached["allowed"] is True  # the verified digest decides from the cache
    closed = api.send(review(own.good, uid=f"{tag}-tag"))
    assert closed["allowed"] is False
    assert f"found registry {host} is unreachable; expected" in closed["status"]["message"]
    opened = api.send(review(own.lenient, uid=f"{tag}-lenient"))
    assert opened["allowed"] is True
    assert opened["warnings"] == [
        f"{own.lenient}: evidence.unavailable (AccountabilityPolicy/lenient): found registry "
        f"{host} is unreachable; expected verified attestations for the image; fix: "
        "admitted because the registry itself is unavailable and the policy fails open "
        "(failurePolicy: Ignore); redeploy once it is back"
    ]


@pytest.mark.parametrize("fault", ["stopped", "hung"])
def test_a_registry_outage_keeps_cached_digests_deciding_and_answers_every_review(
    fault: str, own: Own, tmp_path: Path, tls: Tls
) -> None:
    db = tmp_path / "ledger.db"
    hook = start_ledgered_webhook(
        tmp_path,
        tls,
        ledger=f"sqlite:///{db}",
        policies=tmp_path / "policies",
        registry_host=own.registry.host,
        extra=BUDGET_ARGS,
    )
    api = Apiserver(hook, tmp_path / "ca.pem")
    pid = own.registry.pid
    assert pid is not None
    try:
        assert api.send(review(own.pinned_good, uid="warm"))["allowed"] is True
        if fault == "stopped":
            own.registry.stop()
        else:
            os.kill(pid, signal.SIGSTOP)
        try:
            for round_ in range(2):
                _during_the_outage(api, own, f"{fault}-{round_}")
        finally:
            if fault == "stopped":
                own.registry.start(port=own.port)
            else:
                os.kill(pid, signal.SIGCONT)
        back = api.send(review(own.good, uid="back"))
        assert back["allowed"] is True
        assert "warnings" not in back
        assert api.answers == len(api.answered) == 8
        assert_all_recorded(Ledger(f"sqlite:///{db}"), api.answered)
    finally:
        api.close()
        hook.stop()
