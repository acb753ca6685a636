"""The HTTP face of the webhook: /validate, /mutate, health, readiness and metrics.

A thin shell over ``Webhook``: it reads the body with a hard size cap (a huge object must not
exhaust memory before we refuse it), judges warm reviews inline and the rest in threads, and turns
anything unexpected into a denial for that request, never into a 500 the apiserver would report
as a broken webhook. With ``client_auth``, only the kube-apiserver's client certificate reaches
anything but the probes and metrics (see ``client_auth``).

The three paths every admission and every probe takes (``POST /validate``, ``POST /mutate``,
``GET /healthz``) are plain ASGI in front of the FastAPI app, which serves the rest (readiness,
metrics, and the 404/405 answers): FastAPI's routing and middleware layers cost as much CPU per
request as the TLS floor itself (``benchmarks/bench_webhook.py``), on the one event loop that
every connection shares. For the same reason a warm review is judged on the event loop itself
and awaits its ledger commit there (``admission.warm``); one that needs I/O is handed to the
judging threads by ``loop.run_in_executor`` on a plain thread pool (the event loop is woken once,
when the answer is ready), and answers are written by orjson.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Response

from affidavit.admission.client_auth import (
    ASGIApp,
    ClientAuth,
    Receive,
    RequireClientCert,
    Scope,
    Send,
    caller_of,
)
from affidavit.admission.decide import Answer, Webhook, sniff_uid
from affidavit.admission.decisions_api import PREFIX as DECISIONS_PREFIX
from affidavit.admission.decisions_api import add_decision_routes
from affidavit.admission.pin import Pinner
from affidavit.admission.review import review_response
from affidavit.admission.warm import WarmJudge
from affidavit.ledger import Ledger
from affidavit.ledger.buffer import BufferedLedger

log = logging.getLogger("affidavit.admission")

_HEAD_KEEP = 65536
#: Threads judging reviews at once (as many as Starlette's thread pool had).
JUDGES = 40


_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond_json(send: Send, answer: Answer) -> None:
    try:
        body = orjson.dumps(answer.body)
    except (orjson.JSONEncodeError, TypeError):  # a lone surrogate in a message: escaped
        body = json.dumps(answer.body, separators=(",", ":")).encode()
    await _respond(send, answer.status, body, _JSON)


def create_app(
    webhook: Webhook,
    *,
    flush_interval: float = 2.0,
    client_auth: ClientAuth | None = None,
    decisions_api: bool = False,
    decisions_ledger: Callable[[], Ledger | None] | None = None,
) -> ASGIApp:
    """The ASGI app; starts the policy source and the ledger flusher with the server.

    ``decisions_api``: also serve the ledger read-only at ``/decisions`` (see ``decisions_api``),
    through ``decisions_ledger`` (``decisions_api.reading_ledger``: its own connections), or
    else the webhook's.
    """
    stop = threading.Event()
    pinner = Pinner(webhook)
    judges = ThreadPoolExecutor(JUDGES, thread_name_prefix="affidavit-judge")
    warm = WarmJudge(webhook, judges, per_namespace=max(1, JUDGES // 4))

    def flusher() -> None:
        # The only writer of the ledger's backlog (replayed from its file at start, or buffered
        # in an outage): requests never flush it themselves.
        while True:
            if webhook.ledger is not None and webhook.ledger.pending:
                try:
                    webhook.ledger.flush()
                except Exception:  # keep flushing: a dead flusher would fill the buffer
                    log.exception("ledger flush crashed")
            if stop.wait(flush_interval):
                return

    def last_flush(ledger: BufferedLedger) -> None:
        """At shutdown, one last write of the decisions answered and buffered; those still
        buffered are named: they wait in the buffer file for the next start on its volume, and
        are lost with it (an emptyDir is deleted with its Pod)."""
        try:
            left = ledger.flush()
        except Exception as e:
            log.warning("last ledger flush failed: %s", getattr(e, "message", None) or e)
            left = ledger.pending
        if left:
            where = ledger.path if ledger.path is not None else "memory (no --ledger-buffer-file)"
            log.error(
                "%d answered decision(s) not in the ledger at shutdown (%s): they stay in %s "
                "for the next start on this volume, and are lost if it is not kept",
                left,
                ledger.last_error or "the ledger is unavailable",
                where,
            )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        webhook.policy.start()
        thread = threading.Thread(target=flusher, name="affidavit-ledger-flush", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            judges.shutdown(wait=False)
            webhook.policy.stop()
            webhook.close()
            if webhook.ledger is not None:
                last_flush(webhook.ledger)

    api = FastAPI(
        title="affidavit admission webhook",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if decisions_api:
        add_decision_routes(
            api,
            decisions_ledger or (lambda: webhook.ledger.ledger if webhook.ledger else None),
        )
    limit = webhook.judge.max_body_bytes

    async def answer(
        receive: Receive, send: Send, handle: Callable[[bytes], Awaitable[Answer]]
    ) -> None:
        chunks: list[bytes] = []
        size = 0
        head = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif len(head) < _HEAD_KEEP:
                head = (b"".join(chunks) + chunk)[:_HEAD_KEEP]
                chunks = []
        if size > limit:
            too_large = webhook.too_large(head or b"".join(chunks)[:_HEAD_KEEP], size)
            await _respond_json(send, too_large)
            return
        body = b"".join(chunks)
        try:
            result = await handle(body)
        except Exception as e:  # a bug answers as a denial for this request, not a 500
            log.exception("admission review crashed")
            uid = sniff_uid(body)
            message_text = f"internal error in the affidavit webhook ({type(e).__name__}); denied"
            if uid is None:
                error = json.dumps({"error": message_text}).encode()
                await _respond(send, 400, error, _JSON)
                return
            denial = review_response(uid, allowed=False, message=message_text)
            result = Answer(200, denial)
        await _respond_json(send, result)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == "/validate" and method == "POST":
                caller = caller_of(scope, client_auth)
                await answer(receive, send, lambda body: warm.judge(body, caller))
                return
            if path == "/mutate" and method == "POST":
                # Pin a Pod's tags to the digests that were verified (affidavit.admission.pin).
                await answer(receive, send, lambda body: warm.pin(pinner, body))
                return
            if path == "/healthz" and method == "GET":
                await _respond(send, 200, b"ok\n", _TEXT)
                return
        await api(scope, receive, send)  # readiness, metrics, lifespan, 404 and 405

    @api.get("/readyz")
    async def readyz() -> Response:
        problem = webhook.policy.problem()
        index = webhook.policy.current()
        if problem is not None or index is None:
            reason = problem or "no policy index loaded yet"
            return Response(f"not ready: {reason}\n", 503, media_type="text/plain")
        # The digest lets a rollout or a test wait for *this* index, not for any index.
        return Response(f"ok: policy index {index.digest}\n", media_type="text/plain")

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(
            webhook.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    if client_auth is None:
        return app
    return RequireClientCert(
        app,
        auth=client_auth,
        on_refused=webhook.metrics.unauthenticated.inc,
        open_prefixes=(DECISIONS_PREFIX,) if decisions_api else (),
    )
