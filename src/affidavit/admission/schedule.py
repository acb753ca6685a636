"""Evidence lookups on a fixed set of threads, taking turns between namespaces.

A plain thread pool is first come, first served: a few requests (dry runs included) that list
dozens of images on a slow registry fill its queue and every thread, and a reviewed image in
another namespace waits past its budget. Here each namespace has its own queue, idle threads
serve the namespaces in turn (round robin), and one namespace never holds more than
``per_namespace`` threads at once, so a flood slows only the namespace it comes from. Each job
carries its request's deadline: registry calls inside it are capped by that deadline, a job
whose deadline passed while queued is cancelled instead of run, and the caller cancels what is
still queued when its budget ends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from affidavit.attestations.registry_transport import deadline as registry_deadline

T = TypeVar("T")


@dataclass(frozen=True)
class _Job:
    namespace: str
    fn: Callable[[], Any]
    deadline: float
    future: Future[Any]


class FairScheduler:
    """Round-robin dispatch of deadline-bound jobs over per-namespace queues."""

    def __init__(self, workers: int = 16, per_namespace: int | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.per_namespace = per_namespace or max(1, workers // 4)
        self._cv = threading.Condition()
        self._queues: OrderedDict[str, deque[_Job]] = OrderedDict()
        self._running: Counter[str] = Counter()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"affidavit-evidence-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(self, namespace: str, fn: Callable[[], T], *, deadline: float) -> Future[T]:
        """Queue ``fn`` for ``namespace``; it runs with registry calls capped at ``deadline``."""
        future: Future[T] = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("the scheduler is closed")
            self._queues.setdefault(namespace, deque()).append(
                _Job(namespace, fn, deadline, future)
            )
            self._cv.notify()
        return future

    def queued(self) -> dict[str, int]:
        """Jobs waiting per namespace (for metrics and tests)."""
        with self._cv:
            return {ns: len(q) for ns, q in self._queues.items()}

    def close(self) -> None:
        with self._cv:
            self._closed = True
            for q in self._queues.values():
                for job in q:
                    job.future.cancel()
            self._queues.clear()
            self._cv.notify_all()

    def _next(self) -> _Job | None:
        """The first queued job of the first namespace (in turn order) below its thread cap."""
        for namespace in list(self._queues):
            if self._running[namespace] >= self.per_namespace:
                continue
            queue = self._queues[namespace]
            job = queue.popleft()
            if queue:
                self._queues.move_to_end(namespace)  # its next job waits for the others' turn
            else:
                del self._queues[namespace]
            return job
        return None

    def _work(self) -> None:
        while True:
            with self._cv:
                job = self._next()
                while job is None and not self._closed:
                    self._cv.wait()
                    job = self._next()
                if job is None:
                    return
                self._running[job.namespace] += 1
            try:
                self._run(job)
            finally:
                with self._cv:
                    self._running[job.namespace] -= 1
                    if not self._running[job.namespace]:
                        del self._running[job.namespace]
                    # One slot freed: this worker looks for the next job itself, and one waiter
                    # at most is needed besides. Waking them all cost every cold lookup a
                    # context switch per idle worker (16 by default), each finding nothing.
                    self._cv.notify()

    @staticmethod
    def _run(job: _Job) -> None:
        if time.monotonic() >= job.deadline:
            job.future.cancel()  # its request has already answered without it
            return
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            with registry_deadline(job.deadline):
                result = job.fn()
        except BaseException as e:  # handed to the caller, like concurrent.futures does
            job.future.set_exception(e)
        else:
            job.future.set_result(result)
