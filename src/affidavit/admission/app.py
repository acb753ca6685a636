"""The HTTP face of the webhook: /validate, /mutate, health, readiness and metrics.

A thin shell over ``Webhook``: it reads the body with a hard size cap (a huge object must not
exhaust memory before we refuse it), runs the blocking judgement off the event loop, and turns
anything unexpected into a denial for that request, never into a 500 the apiserver would report
as a broken webhook. With ``client_auth``, only the kube-apiserver's client certificate reaches
anything but the probes and metrics (see ``client_auth``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from affidavit.admission.client_auth import ClientAuth, RequireClientCert, caller_of
from affidavit.admission.decide import Answer, Webhook, sniff_uid
from affidavit.admission.decisions_api import PREFIX as DECISIONS_PREFIX
from affidavit.admission.decisions_api import add_decision_routes
from affidavit.admission.pin import Pinner
from affidavit.admission.review import review_response

log = logging.getLogger("affidavit.admission")

_HEAD_KEEP = 65536


def _json(answer: Answer) -> Response:
    return Response(
        content=json.dumps(answer.body, separators=(",", ":")),
        status_code=answer.status,
        media_type="application/json",
    )


def create_app(
    webhook: Webhook,
    *,
    flush_interval: float = 2.0,
    client_auth: ClientAuth | None = None,
    decisions_api: bool = False,
) -> FastAPI:
    """The FastAPI app; starts the policy source and the ledger flusher with the server.

    ``decisions_api``: also serve the ledger read-only at ``/decisions`` (see ``decisions_api``).
    """
    stop = threading.Event()
    pinner = Pinner(webhook)

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

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        webhook.policy.start()
        thread = threading.Thread(target=flusher, name="affidavit-ledger-flush", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            webhook.policy.stop()
            webhook.close()

    app = FastAPI(
        title="affidavit admission webhook",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if client_auth is not None:
        app.add_middleware(
            RequireClientCert,
            auth=client_auth,
            on_refused=webhook.metrics.unauthenticated.inc,
            open_prefixes=(DECISIONS_PREFIX,) if decisions_api else (),
        )
    if decisions_api:
        add_decision_routes(app, lambda: webhook.ledger.ledger if webhook.ledger else None)
    limit = webhook.judge.max_body_bytes

    async def answer(request: Request, handle: Callable[[bytes], Answer]) -> Response:
        chunks: list[bytes] = []
        size = 0
        head = b""
        async for chunk in request.stream():
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif len(head) < _HEAD_KEEP:
                head = (b"".join(chunks) + chunk)[:_HEAD_KEEP]
                chunks = []
        if size > limit:
            return _json(webhook.too_large(head or b"".join(chunks)[:_HEAD_KEEP], size))
        body = b"".join(chunks)
        try:
            answer = await run_in_threadpool(handle, body)
        except Exception as e:  # a bug answers as a denial for this request, not a 500
            log.exception("admission review crashed")
            uid = sniff_uid(body)
            message = f"internal error in the affidavit webhook ({type(e).__name__}); denied"
            if uid is None:
                return Response(json.dumps({"error": message}), 400, media_type="application/json")
            return _json(Answer(200, review_response(uid, allowed=False, message=message)))
        return _json(answer)

    @app.post("/validate")
    async def validate(request: Request) -> Response:
        caller = caller_of(request.scope, client_auth)
        return await answer(request, lambda body: webhook.handle(body, caller))

    @app.post("/mutate")
    async def mutate(request: Request) -> Response:
        """Pin a Pod's tags to the digests that were verified (see ``affidavit.admission.pin``)."""
        return await answer(request, pinner.handle)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response("ok\n", media_type="text/plain")

    @app.get("/readyz")
    async def readyz() -> Response:
        problem = webhook.policy.problem()
        index = webhook.policy.current()
        if problem is not None or index is None:
            reason = problem or "no policy index loaded yet"
            return Response(f"not ready: {reason}\n", 503, media_type="text/plain")
        # The digest lets a rollout or a test wait for *this* index, not for any index.
        return Response(f"ok: policy index {index.digest}\n", media_type="text/plain")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(
            webhook.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return app
