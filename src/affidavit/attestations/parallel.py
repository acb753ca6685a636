"""Independent registry calls at once, on threads kept between calls.

A fetch sends its independent requests together (``fetch``): the listings, then layers and
manifests. Starting a thread per request, and waiting for it to start, cost a cold lookup more
CPU than the request it then sent, so helper threads are kept idle between rounds (a webhook
runs many lookups at once).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Sequence
from queue import SimpleQueue
from typing import TypeVar, cast

T = TypeVar("T")
#: Registry requests one fetch sends at once (over the client's kept-alive connections).
FETCH_WORKERS = 8
#: Idle helper threads kept between fetches (the webhook's lookups run many at once).
KEEP_IDLE = 32


class _Helpers:
    """Threads kept idle between ``in_parallel`` rounds: starting one (and waiting for it to
    start) cost a cold lookup more CPU than the request it then sent.

    ``run`` hands a job to an idle thread, reserved under the lock (so every job has its
    thread), or starts one; a thread marks itself idle before it signals ``done``, so a round
    that has ended leaves its threads ready for the next.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: SimpleQueue[tuple[Callable[[], None], threading.Semaphore]] = SimpleQueue()
        self._idle = 0

    def run(self, job: Callable[[], None], done: threading.Semaphore) -> None:
        with self._lock:
            reserved = self._idle > 0
            self._idle -= reserved
        if reserved:
            self._jobs.put((job, done))
        else:
            threading.Thread(target=self._serve, args=(job, done), daemon=True).start()

    def _serve(self, job: Callable[[], None], done: threading.Semaphore) -> None:
        while True:
            job()  # never raises: ``in_parallel``'s work() keeps every failure
            with self._lock:
                keep = self._idle < KEEP_IDLE
                self._idle += keep
            done.release()
            if not keep:
                return
            job, done = self._jobs.get()


_helpers = _Helpers()


def _fresh_helpers() -> None:  # a forked child has none of its parent's threads
    global _helpers
    _helpers = _Helpers()


os.register_at_fork(after_in_child=_fresh_helpers)


def in_parallel(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run independent registry calls at once (at most ``FETCH_WORKERS``); results in order.

    Each runs in a copy of the caller's context, so the webhook's registry deadline (a context
    variable) bounds them as it bounds the caller; every call ends before this returns, and the
    first failure in order is raised. Kept threads (``_Helpers``) and the caller taking the
    calls in turn: what ``concurrent.futures`` adds (and its import of ``logging``) is of no use
    here, and cost a tenth of a one-attestation ``affidavit verify``'s start.
    """
    if len(calls) <= 1:
        return [call() for call in calls]
    jobs = iter([(i, call, contextvars.copy_context()) for i, call in enumerate(calls)])
    results: list[T | None] = [None] * len(calls)
    failures: list[BaseException | None] = [None] * len(calls)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                job = next(jobs, None)
            if job is None:
                return
            i, call, context = job
            try:
                results[i] = context.run(call)
            except BaseException as e:
                failures[i] = e

    # the caller takes calls too (it would only wait), helped by kept threads
    helpers = min(FETCH_WORKERS, len(calls)) - 1
    done = threading.Semaphore(0)
    for _ in range(helpers):
        _helpers.run(work, done)
    work()
    for _ in range(helpers):
        done.acquire()
    for failure in failures:
        if failure is not None:
            raise failure
    return cast("list[T]", results)
