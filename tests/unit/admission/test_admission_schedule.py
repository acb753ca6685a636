"""The fair lookup scheduler: namespaces take turns, one namespace never holds more than its
share of threads, and a job whose request has already answered is cancelled, not run. Jobs
block on events, so the order is decided by the scheduler, never by timing."""

from __future__ import annotations

import threading
import time
from functools import partial

from affidavit.admission.schedule import FairScheduler

LATER = time.monotonic() + 3600


def test_a_flooding_namespace_gets_only_its_share_of_threads() -> None:
    release = threading.Event()
    started: list[str] = []
    pool = FairScheduler(workers=4, per_namespace=2)
    try:

        def blocked(name: str) -> str:
            started.append(name)
            release.wait()
            return name

        flood = [pool.submit("flood", partial(blocked, f"f{i}"), deadline=LATER) for i in range(50)]
        other = pool.submit("shop", lambda: "shop", deadline=LATER)
        assert other.result(timeout=30) == "shop"  # while the flood still blocks its threads
        assert sorted(started) == ["f0", "f1"]
        assert pool.queued() == {"flood": 48}
        release.set()
        assert [f.result(timeout=30) for f in flood] == [f"f{i}" for i in range(50)]
    finally:
        release.set()
        pool.close()


def test_namespaces_take_turns() -> None:
    gate = threading.Event()
    order: list[str] = []
    pool = FairScheduler(workers=1, per_namespace=1)
    try:
        running = threading.Event()

        def hold() -> None:
            running.set()
            gate.wait()

        first = pool.submit("a", hold, deadline=LATER)  # holds the only thread
        assert running.wait(30)
        jobs = [pool.submit("a", partial(order.append, f"a{i}"), deadline=LATER) for i in range(3)]
        jobs += [pool.submit("b", partial(order.append, f"b{i}"), deadline=LATER) for i in range(2)]
        gate.set()
        first.result(timeout=30)
        for j in jobs:
            j.result(timeout=30)
        assert order == ["a0", "b0", "a1", "b1", "a2"]
    finally:
        gate.set()
        pool.close()


def test_a_job_past_its_deadline_is_cancelled_not_run() -> None:
    gate = threading.Event()
    ran: list[int] = []
    pool = FairScheduler(workers=1, per_namespace=1)
    try:
        first = pool.submit("a", gate.wait, deadline=LATER)
        late = pool.submit("a", lambda: ran.append(1), deadline=time.monotonic())
        gate.set()
        first.result(timeout=30)
        for _ in range(3000):
            if late.done():
                break
            threading.Event().wait(0.01)
        assert late.cancelled()
        assert ran == []
    finally:
        gate.set()
        pool.close()


class CountingScheduler(FairScheduler):
    """The real scheduler, counting how often a worker looks for a job."""

    looked = 0

    def _next(self) -> object:  # type: ignore[override]
        CountingScheduler.looked += 1
        return super()._next()


def test_a_finished_job_does_not_wake_every_idle_worker() -> None:
    # the webhook's pool: 16 threads, nearly all idle; each cold lookup is one job
    pool = CountingScheduler(workers=16)
    try:
        jobs = 40
        for i in range(jobs):
            assert pool.submit("shop", partial(int, i), deadline=LATER).result(timeout=30) == i
    finally:
        pool.close()
    for thread in pool._threads:
        thread.join(30)
    # each job: the worker a submit wakes looks once, and again when it is done; a worker woken
    # for nothing looks once more. Waking all 15 idle workers per job would look ~16 times each
    assert CountingScheduler.looked <= 4 * jobs + 2 * 16, CountingScheduler.looked
