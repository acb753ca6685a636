"""What every fault test asserts, in one place: the apiserver got an answer (its client times out a
little above the webhook's budget, as the apiserver's ``timeoutSeconds`` does, and no review may
hit that timeout), and once the fault is over every answered decision is in the ledger and the
chain verifies. Behaviour only (answers, rows, chain): nothing here knows how the ledger writes.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from admission_support import WebhookProcess

from affidavit.envtest import wait_for
from affidavit.ledger import Ledger

#: The webhook's request budget in these tests (``--budget-seconds``), and the apiserver's
#: patience: its ``timeoutSeconds`` sits above the budget as the chart's 10 s sits above 8 s.
#: The margin here is 4 s, not the chart's 2: four load threads and the webhook share a loaded
#: 2-core CI machine, where a review answered at its budget can take seconds more to arrive.
BUDGET = 4.0
APISERVER_TIMEOUT = BUDGET + 4.0
BUDGET_ARGS = ["--budget-seconds", f"{BUDGET:g}"]


class TimedOut(AssertionError):
    """The webhook did not answer within the apiserver's timeout: the apiserver would fail the call."""


class Apiserver:
    """Sends reviews as the kube-apiserver does (a timeout above the budget) and keeps the
    decision ids it was answered with, in answer order. Thread-safe."""

    def __init__(self, hook: WebhookProcess, ca: Path) -> None:
        self.hook = hook
        self.client = httpx.Client(
            verify=ssl.create_default_context(cafile=str(ca)), timeout=APISERVER_TIMEOUT
        )
        self.answered: list[str] = []
        self.answers = 0
        self.slowest = 0.0  # a figure for the README, never asserted
        self._lock = threading.Lock()

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """The review's response; raises ``TimedOut`` where the apiserver would have given up."""
        started = time.monotonic()
        try:
            r = self.client.post(
                f"{self.hook.url}/validate",
                content=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
            )
        except httpx.TimeoutException as e:
            raise TimedOut(
                f"review {body['request']['uid']} got no answer within the apiserver's "
                f"{APISERVER_TIMEOUT:g}s (budget {BUDGET:g}s)"
            ) from e
        assert r.status_code == 200, r.text
        response: dict[str, Any] = r.json()["response"]
        assert response["uid"] == body["request"]["uid"]
        with self._lock:
            self.answers += 1
            self.slowest = max(self.slowest, time.monotonic() - started)
            decision = (response.get("auditAnnotations") or {}).get("decision")
            if decision is not None:
                self.answered.append(decision)
        return response

    def close(self) -> None:
        """Close the client; print the run's figures (shown with ``pytest -s``)."""
        self.client.close()
        print(
            f"\nfault figures: {self.answers} reviews answered, {len(self.answered)} with a "
            f"decision id, slowest answer {self.slowest:.2f}s (budget {BUDGET:g}s, apiserver "
            f"timeout {APISERVER_TIMEOUT:g}s)"
        )


def recorded_ids(ledger: Ledger) -> list[str]:
    return [r.id for r in ledger.iter_all()]


def assert_all_recorded(ledger: Ledger, answered: list[str], *, in_order: bool = True) -> None:
    """After recovery: the ledger holds exactly the answered decisions and its chain verifies."""
    wait_for(lambda: ledger.count() >= len(answered), f"{len(answered)} decisions in the ledger")
    recorded = recorded_ids(ledger)
    if in_order:
        assert recorded == answered
    else:
        assert sorted(recorded) == sorted(answered)
    report = ledger.verify_chain()
    assert report.ok, report
