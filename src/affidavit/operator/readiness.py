"""The operator's readiness: ready means the policy index is compiled, published and current.

A Pod whose operator cannot reach the API (no cluster DNS, a NetworkPolicy, RBAC) compiles no
policy, yet kopf's liveness probe answers as long as the process runs, so the Pod looked Ready.
``/readyz`` answers 200 only when the last reconcile succeeded and is recent (within two resync
periods, so a wedged loop shows too), and 503 otherwise with the reason in the body, the same
reason the operator logs, so ``kubectl describe``/``curl`` and the logs tell one story.

It gates the operator's start, not the Pod's readiness for its whole life. A Pod is Ready only
when every container is, and the Service sends the API server's admission calls only to Ready
Pods: as a readiness probe it made an operator not ready in every Pod at once (CRDs older than
it, an API it cannot reach) into a webhook without endpoints, and failurePolicy Fail into every
workload of the cluster refused, though the webhook serves from its last index. So the chart
probes it as the operator's startup probe (a new Pod of a rollout against older CRDs is held
back while the old ones serve), and ``/metrics`` beside ``/readyz`` exports it as
``affidavit_operator_ready`` (1 or 0) for the chart's alert.

The startup probe reads ``/startz``: ``/readyz``'s answer, except that older CRDs hold the start
only where old Pods serve meanwhile. A Recreate rollout (the SQLite ledger's one volume) stops
the old Pod first; holding the new one then left the webhook without endpoints and, under
failurePolicy Fail, every workload refused until someone applied the CRDs. There the new Pod
starts and serves the policies as stored (the fields the old schema lacks could not be set
before the upgrade either), while ``/readyz``, the gauge and the log name the older CRDs.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from affidavit.errors import UsageError

log = logging.getLogger(__name__)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Readiness:
    """What the reconciler last achieved; read by ``/readyz``."""

    max_age: datetime.timedelta
    index_digest: str | None = None
    succeeded_at: datetime.datetime | None = None
    error: str | None = None
    #: Why the served CRDs are older than this operator's (``crd_drift``), or None.
    crds_problem: str | None = None
    #: Whether older CRDs hold the operator's start (``/startz``) as well as make it not ready.
    #: Only where another Pod serves meanwhile: under a Recreate rollout (the SQLite ledger's
    #: one volume) the old Pod is gone first, and a held start was a webhook without endpoints.
    crds_hold_start: bool = True
    _reported: bool | None = field(default=None, repr=False)

    def succeeded(self, digest: str) -> None:
        self.index_digest, self.succeeded_at, self.error = digest, _now(), None
        self._log_change()

    def failed(self, reason: str) -> None:
        self.error = reason
        self._log_change()

    def crds(self, problem: str | None) -> None:
        """Record the CRD check's answer; a new problem is logged even while already not ready
        for another reason, a solved one as the state it leaves."""
        if problem == self.crds_problem:
            return
        self.crds_problem = problem
        if problem is not None:
            log.warning("not ready: %s", problem)
            self._reported = False
        else:
            self._log_change()

    def state(
        self, now: datetime.datetime | None = None, *, start: bool = False
    ) -> tuple[bool, str]:
        """(ready, the one-line reason); ``start``: whether the Pod may start (``/startz``),
        which older CRDs do not hold unless ``crds_hold_start``."""
        now = now or _now()
        if self.crds_problem is not None and (self.crds_hold_start or not start):
            return False, self.crds_problem
        if self.error is not None:
            since = "never compiled" if self.succeeded_at is None else "index is stale"
            return False, f"policy index not current ({since}): {self.error}"
        if self.succeeded_at is None or self.index_digest is None:
            return False, "no policy index compiled yet"
        age = now - self.succeeded_at
        if age > self.max_age:
            return False, (
                f"policy index {self.index_digest} last reconciled {int(age.total_seconds())}s "
                f"ago, over the {int(self.max_age.total_seconds())}s limit"
            )
        return True, f"policy index {self.index_digest} published"

    def _log_change(self) -> None:
        ready, reason = self.state()
        if ready != self._reported:
            (log.info if ready else log.warning)(
                "%s: %s", "ready" if ready else "not ready", reason
            )
        self._reported = ready


def parse_endpoint(url: str) -> tuple[str, int, str]:
    """``http://HOST:PORT/PATH`` -> (host, port, path)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "http" or not parsed.hostname or parsed.port is None:
        raise UsageError(
            f"--readiness {url!r} is not an http://HOST:PORT/PATH URL",
            hint="e.g. --readiness http://0.0.0.0:8081/readyz",
        )
    return parsed.hostname, parsed.port, parsed.path or "/readyz"


def render_metrics(readiness: Readiness) -> bytes:
    """``affidavit_operator_ready`` in Prometheus's text format, read now."""
    ready, _ = readiness.state()
    return (
        b"# HELP affidavit_operator_ready Whether the operator's policy index is compiled, "
        b"published and current (1), or not (0: GET /readyz and the log say why).\n"
        b"# TYPE affidavit_operator_ready gauge\n"
        b"affidavit_operator_ready " + (b"1.0" if ready else b"0.0") + b"\n"
    )


async def serve(
    readiness: Readiness,
    url: str,
    stop: asyncio.Event,
    metrics: Callable[[], bytes] | None = None,
) -> None:
    """Answer ``GET PATH`` and ``GET /metrics`` (the readiness gauge, then what ``metrics``
    renders) until ``stop`` is set."""
    host, port, path = parse_endpoint(url)

    def answer(ready: bool, reason: str) -> web.Response:
        return web.Response(
            status=200 if ready else 503, text=("ok: " if ready else "not ready: ") + reason + "\n"
        )

    async def readyz(_: web.Request) -> web.Response:
        return answer(*readiness.state())

    async def startz(_: web.Request) -> web.Response:
        ready, reason = readiness.state(start=True)
        if ready and readiness.crds_problem is not None:
            reason += f"; started though {readiness.crds_problem}"
        return answer(ready, reason)

    async def metrics_text(_: web.Request) -> web.Response:
        body = render_metrics(readiness) + (metrics() if metrics is not None else b"")
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.add_routes(
        [web.get(path, readyz), web.get("/startz", startz), web.get("/metrics", metrics_text)]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await stop.wait()
    finally:
        await runner.cleanup()
