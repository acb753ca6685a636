"""Warm reviews judged on the event loop, their decisions awaited from the ledger's writer.

Why: a review whose every image has cached, fresh evidence needs no I/O to be judged, only CPU
(about a third of a millisecond). Handing it to a thread costs more than judging it: the hop to
the pool and back, a thread blocked per decision until the group commit answers, and the
threads' contention for the GIL, all on the one core the event loop needs for TLS and HTTP. So
such a review is judged right on the event loop (``Webhook.prepare(warm_only=True)``), its
decision submitted to the ledger's writer thread (``Ledger.submit``: concurrent decisions share
one transaction), and the answer sent when the writer's commit resolves its future. Nothing
changes in what is answered: the decision is durable before the answer, a ledger that does not
commit within its wait buffers it (the buffer's fsync runs in a thread), a full buffer denies.

Anything that would wait (an image to look up, a namespace's labels or a controller owner to
read from the API server) raises ``NotWarm`` before it starts, and the review is judged in a
thread: from its evidence stage by ``Webhook.finish`` when only an image's evidence is missing
(``ColdReview`` carries the parsed review: a cold review is not parsed twice), else whole by
``Webhook.handle``. The fair scheduler, the budget (from the review's arrival) and the owner
check apply there unchanged. ``affidavit_reviews_judged_total{where}`` counts both paths.

The writer's thread hands committed decisions back in one wake-up of the event loop per batch
(not one per decision): each cross-thread wake-up costs the loop a GIL hand-off.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from functools import partial

from affidavit.admission.decide import UNAUTHENTICATED, Answer, ColdReview, Judged, Webhook
from affidavit.admission.gather import NotWarm
from affidavit.admission.pin import Pinner
from affidavit.admission.review import review_response
from affidavit.errors import LedgerError
from affidavit.ledger import RecordResult
from affidavit.ledger.canonical import canonical_pair
from affidavit.ledger.writer import Pending
from affidavit.policy.decision import Caller

log = logging.getLogger("affidavit.admission")

#: A review larger than this is parsed and judged in a thread (a Deployment is a few KB).
LARGE_BODY = 256 * 1024
#: Large reviews judged at once (each parsed one holds tens of MB).
LARGE_AT_ONCE = 2


class WarmJudge:
    """``judge`` for one app: warm reviews on its event loop, the rest in ``offload``."""

    def __init__(self, webhook: Webhook, offload: Executor, per_namespace: int = 10) -> None:
        self.webhook = webhook
        self.offload = offload
        #: Of ``offload``'s threads, the most one namespace's reviews hold at once.
        self.per_namespace = per_namespace
        self._turns: dict[str, asyncio.Semaphore] = {}
        self._large: asyncio.Semaphore | None = None  # made on the event loop, at first use
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Submitted decisions, by their answer's future (touched on the event loop only).
        self._waiting: dict[Pending, asyncio.Future[Pending | None]] = {}
        self._committed: deque[Pending] = deque()  # filled by the writer's thread
        self._lock = threading.Lock()
        self._scheduled = False

    async def judge(self, body: bytes, caller: Caller = UNAUTHENTICATED) -> Answer:
        """The answer to one review: judged here when warm, else by ``webhook.handle`` in a
        thread."""
        webhook = self.webhook
        started = time.monotonic()
        if len(body) > LARGE_BODY:
            return await self._large_review(body, caller, started)
        try:
            judged = webhook.prepare(body, started, caller, warm_only=True)
        except ColdReview as e:  # parsed already: judged on from its evidence stage
            webhook.metrics.inc(webhook.metrics.judged, "pool")
            work = partial(webhook.finish, e.unjudged)
            return await self._in_turn(e.namespace, e.uid, started, work)
        except NotWarm as e:
            webhook.metrics.inc(webhook.metrics.judged, "pool")
            work = partial(webhook.handle, body, caller, started)
            return await self._in_turn(e.namespace, e.uid, started, work)
        webhook.metrics.inc(webhook.metrics.judged, "inline")
        try:
            if isinstance(judged, Answer):
                return judged
            if judged.req.dry_run or webhook.ledger is None:
                return webhook.recorded(judged, None)
            try:
                result = await self.record(judged)
            except LedgerError as e:
                return webhook.unrecorded(judged, e)
            return webhook.recorded(judged, result)
        finally:
            webhook.metrics.duration.observe(time.monotonic() - started)

    async def _large_review(self, body: bytes, caller: Caller, started: float) -> Answer:
        """A review of more than ``LARGE_BODY`` bytes, judged whole in a thread, at most
        ``LARGE_AT_ONCE`` at once. Parsed on the event loop, a 3 MB review held it for about
        0.4 s and 25 MB of memory: thirty such dry runs at once (they never reach etcd, so its
        1.5 MiB limit does not apply) kept every other review and the probes waiting for
        seconds, and grew the process past its memory limit."""
        self.webhook.metrics.inc(self.webhook.metrics.judged, "pool")
        return await self._in_large(partial(self.webhook.handle, body, caller, started))

    async def _in_large(self, work: Callable[[], Answer]) -> Answer:
        """``work`` (a large review's, parsed in it) in a thread, ``LARGE_AT_ONCE`` at once."""
        if self._large is None:
            self._large = asyncio.Semaphore(LARGE_AT_ONCE)
        async with self._large:
            return await asyncio.get_running_loop().run_in_executor(self.offload, work)

    async def pin(self, pinner: Pinner, body: bytes) -> Answer:
        """The mutating webhook's answer (``Pinner``): read on the event loop (an exception's
        stamp, a Pod with nothing to pin: no thread at all), its lookups in a thread in its
        namespace's turn, the same turns as the validating webhook's cold reviews. On the
        shared threads first come, first served, one namespace's flood of Pod dry runs naming
        tags on a slow registry (each holding a thread for its whole budget, counted from when
        the thread started) held every thread, and every Pod's pinning and every other
        namespace's cold review in the cluster answered after the API server's timeout."""
        started = time.monotonic()
        if len(body) > LARGE_BODY:
            return await self._in_large(partial(pinner.handle, body, started))
        work = pinner.prepare(body)
        if isinstance(work, Answer):
            return work
        pin = partial(pinner.pin, work, started)
        return await self._in_turn(work.req.namespace, work.req.uid, started, pin)

    async def _in_turn(
        self, namespace: str | None, uid: str | None, started: float, work: Callable[[], Answer]
    ) -> Answer:
        """``work`` in a thread, in its namespace's turn: at most ``per_namespace`` of one
        namespace's reviews hold a thread at once. The threads are shared (first come, first
        served), so one namespace's flood of reviews that each wait out their budget on a slow
        or absent registry (dry runs cost their sender nothing) held every thread, and every
        other namespace's review was denied as late. A review whose namespace has no turn free
        within its budget is denied, never left to the API server's timeout (which
        ``failurePolicy: Ignore`` would turn into an admission)."""
        loop = asyncio.get_running_loop()
        if namespace is None or uid is None:
            return await loop.run_in_executor(self.offload, work)
        turn = self._turns.get(namespace)
        if turn is None:
            turn = self._turns[namespace] = asyncio.Semaphore(self.per_namespace)
        left = self.webhook.judge.budget_seconds - (time.monotonic() - started)
        try:
            await asyncio.wait_for(turn.acquire(), timeout=max(0.0, left))
        except TimeoutError:
            log.warning("review %s of namespace %s denied: no turn free", uid, namespace)
            message = (
                f"Affidavit is judging {self.per_namespace} other requests of namespace"
                f" {namespace} (the most it judges of one namespace at once) and none ended"
                " within this one's time; retry, or send fewer at once"
            )
            return Answer(200, review_response(uid, allowed=False, message=message, code=429))
        try:
            return await loop.run_in_executor(self.offload, work)
        finally:
            turn.release()

    async def record(self, judged: Judged) -> RecordResult:
        """``BufferedLedger.record(judged.decision)`` without a thread waiting on the commit.

        Raises:
            LedgerError: the decision is neither stored nor buffered (the buffer is full or its
                file cannot be written): the review is denied.
        """
        ledger = self.webhook.ledger
        assert ledger is not None
        loop = asyncio.get_running_loop()
        data, canonical = canonical_pair(judged.decision)
        if ledger.pending:  # a backlog: the decision waits behind it (``BufferedLedger.record``)
            return await loop.run_in_executor(self.offload, ledger.keep, data, canonical)
        self._loop = loop
        pending = ledger.ledger.submit(data, canonical, self._notify)
        if pending is None:  # the ledger's first use (it may create its schema): in a thread
            return await loop.run_in_executor(self.offload, ledger.record, judged.decision)
        done: asyncio.Future[Pending | None] = loop.create_future()
        self._waiting[pending] = done
        writer = ledger.ledger.writer
        # Past the ledger's wait the decision is buffered, as a waiting thread's would be.
        timer = loop.call_later(writer.wait, self._settle_one, pending, None)
        try:
            outcome = await done
        finally:
            timer.cancel()
            self._waiting.pop(pending, None)
        if outcome is None:  # not committed in time: out of the queue if it is still there
            writer.withdraw(pending)
            error: LedgerError | None = writer.late()
        else:
            error = outcome.error
        if error is None and outcome is not None and outcome.record is not None:
            return RecordResult("stored", record=outcome.record)
        ledger.last_error = error.message if error is not None else "the ledger wrote nothing"
        return await loop.run_in_executor(self.offload, ledger.keep, data, canonical)

    def _notify(self, pending: Pending) -> None:
        """On the writer's thread: queue the outcome, wake the event loop once per batch."""
        self._committed.append(pending)
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        with self._lock:
            self._scheduled = False
        while self._committed:
            pending = self._committed.popleft()
            self._settle_one(pending, pending)

    def _settle_one(self, pending: Pending, outcome: Pending | None) -> None:
        done = self._waiting.get(pending)
        if done is not None and not done.done():
            done.set_result(outcome)
