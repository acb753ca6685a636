"""The read-only decisions API: a denied release manager reads the full record through Kubernetes.

Why: the admission message points to ``affidavit explain --decision ID``, but the ledger lives
beside the webhook, inside the cluster. The webhook therefore serves its own ledger, read-only,
and people reach it through the kube-apiserver's service proxy
(``/api/v1/namespaces/NS/services/https:NAME:https/proxy/decisions/ID``) with the credentials
they already have; RBAC decides who may (``services/proxy`` ``get`` on this one Service: the
chart's ClusterRole ``affidavit-decision-reader``).

Routes (GET only; JSON):

* ``/decisions/{id}``: ``{"seq", "hash", "decision"}``, or 404 naming the id.
* ``/decisions?namespace=&kind=&name=&outcome=&limit=``: ``{"items": [...]}``, newest first;
  ``name`` repeats (a Deployment and its ReplicaSets and Pods in one question).

Trust model: the apiserver's service proxy presents no client identity to the backend (its
proxy transport, ``CreateProxyTransport`` in kube-apiserver, has no client certificate, and the
caller's ``Authorization`` header is removed once the apiserver has authenticated it), so a
proxied request cannot be told from a direct one. These routes are therefore open on the
webhook's port like ``/metrics`` (``webhook.clientAuth`` still guards ``/validate`` and
``/mutate``), they are off unless enabled (``--decisions-api``), they only read, and who
reaches the port directly is the NetworkPolicy's business (``networkPolicy.ingressFrom``: the
control plane's addresses). Decisions hold no secrets, but they do name users, workloads and
images.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Query, Response
from starlette.concurrency import run_in_threadpool

from affidavit.errors import LedgerError
from affidavit.ledger import Ledger, LedgerRecord

log = logging.getLogger("affidavit.admission")
T = TypeVar("T")


class _NoLedger(LedgerError):
    """The webhook keeps no ledger: said as it is (nothing internal in it)."""


#: Reads of the decisions API served at once; more are refused with 429 at once. The routes
#: take no client certificate (see the module docstring), and a read may scan the whole table.
AT_ONCE = 4


def reading_ledger(url: str) -> Callable[[], Ledger | None]:
    """The decisions API's own connection to the ledger at ``url``, opened at its first use.

    Apart from admission's: with one engine, a flood of reads (from anyone who reaches the port)
    held the connections that admission's own reads wait for (a pinned child's digest is
    confirmed in the ledger), and such children were judged whole, refused once a policy had
    tightened. Read-only: it never creates the ledger, and opening it waits for one to exist."""
    opened: list[Ledger] = []
    lock = threading.Lock()

    def ledger() -> Ledger:
        with lock:
            if not opened:
                opened.append(Ledger(url, read_only=True))
            return opened[0]

    return ledger


#: The path prefix of the API (open without a client certificate when enabled).
PREFIX = "/decisions"
MAX_LIMIT = 200


def record_json(record: LedgerRecord) -> dict[str, Any]:
    """One stored decision as the API (and ``affidavit decisions list --json``) shows it."""
    return {"seq": record.seq, "hash": record.hash, "decision": record.decision}


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, sort_keys=True), status, media_type="application/json")


def add_decision_routes(app: FastAPI, ledger: Callable[[], Ledger | None]) -> None:
    """Serve ``/decisions`` from the ledger ``ledger()`` returns (None: the webhook keeps none)."""

    busy = asyncio.Semaphore(AT_ONCE)

    def store() -> Ledger:
        found = ledger()
        if found is None:
            raise _NoLedger("this webhook runs without a ledger (--ledger ''): no decisions")
        return found

    def unavailable(e: LedgerError) -> Response:
        if isinstance(e, _NoLedger):
            return _json({"error": e.message}, 503)
        # The cause names the database (host, name, file) and the driver's words: for the log,
        # not for whoever reaches the port (these routes take no client certificate).
        log.warning("decisions API: %s", e.message)
        return _json(
            {"error": "the webhook's ledger cannot be read now; its log names the cause"}, 503
        )

    def too_many() -> Response:
        return _json(
            {"error": f"the decisions API is answering {AT_ONCE} other requests; retry"}, 429
        )

    async def read(work: Callable[[], T]) -> T:
        async with busy:
            return await run_in_threadpool(work)

    @app.get(PREFIX + "/{decision_id}")
    async def one(decision_id: str) -> Response:
        if busy.locked():
            return too_many()
        try:
            record = await read(lambda: store().get(decision_id))
        except LedgerError as e:
            return unavailable(e)
        if record is None:
            return _json(
                {
                    "error": f"decision {decision_id} is not in this webhook's ledger (it may "
                    "still be buffered, or recorded by another cluster's webhook)"
                },
                404,
            )
        return _json(record_json(record))

    @app.get(PREFIX)
    async def many(
        namespace: str | None = None,
        kind: str | None = None,
        name: list[str] | None = Query(default=None),  # noqa: B008 - FastAPI's idiom
        outcome: str | None = None,
        limit: int = 20,
    ) -> Response:
        limit = max(1, min(limit, MAX_LIMIT))
        if busy.locked():
            return too_many()
        try:
            records = await read(
                lambda: store().query(
                    namespace=namespace,
                    kind=kind,
                    names=tuple(name or ()),
                    outcome=outcome,
                    limit=limit,
                    newest_first=True,
                )
            )
        except LedgerError as e:
            return unavailable(e)
        return _json({"items": [record_json(r) for r in records]})
