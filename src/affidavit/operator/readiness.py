"""The operator's readiness: ready means the policy index is compiled, published and current.

A Pod whose operator cannot reach the API (no cluster DNS, a NetworkPolicy, RBAC) compiles no
policy, yet kopf's liveness probe answers as long as the process runs, so the Pod looked Ready.
``/readyz`` answers 200 only when the last reconcile succeeded and is recent (within two resync
periods, so a wedged loop shows too), and 503 otherwise with the reason in the body, the same
reason the operator logs, so ``kubectl describe``/``curl`` and the logs tell one story.
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

    def state(self, now: datetime.datetime | None = None) -> tuple[bool, str]:
        """(ready, the one-line reason)."""
        now = now or _now()
        if self.crds_problem is not None:
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


async def serve(
    readiness: Readiness,
    url: str,
    stop: asyncio.Event,
    metrics: Callable[[], bytes] | None = None,
) -> None:
    """Answer ``GET PATH`` (and ``GET /metrics`` from ``metrics``) until ``stop`` is set."""
    host, port, path = parse_endpoint(url)

    async def readyz(_: web.Request) -> web.Response:
        ready, reason = readiness.state()
        return web.Response(
            status=200 if ready else 503, text=("ok: " if ready else "not ready: ") + reason + "\n"
        )

    app = web.Application()
    app.add_routes([web.get(path, readyz)])
    if metrics is not None:
        render = metrics

        async def metrics_text(_: web.Request) -> web.Response:
            return web.Response(body=render(), content_type="text/plain", charset="utf-8")

        app.add_routes([web.get("/metrics", metrics_text)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await stop.wait()
    finally:
        await runner.cleanup()
