"""Benchmark: how long one namespace's lookup waits while another namespace floods the webhook.

Why: evidence lookups share one set of threads. With a first-come-first-served pool, a few
requests listing dozens of images on a registry that stalls (dry runs cost nothing to send) fill
every thread and the queue, and a reviewed image in another namespace waits behind them until its
request's budget is gone. The webhook's ``FairScheduler`` gives each namespace its own queue,
serves them in turn, and caps the threads one namespace may hold (workers // 4).

This compares both with synthetic jobs (no network): the flood is F jobs that each stall S
seconds (a hanging registry whose own timeout is S); the victim is one job that returns at once.
It reports the victim's wait under a plain ``ThreadPoolExecutor`` and under ``FairScheduler``,
against an 8 s budget. Run: ``.venv/bin/python benchmarks/bench_fairness.py [--flood F]
[--stall S] [--workers W]``.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import Future, ThreadPoolExecutor

from affidavit.admission.schedule import FairScheduler

BUDGET = 8.0


def victim_wait_fifo(flood: int, stall: float, workers: int) -> float:
    pool = ThreadPoolExecutor(workers)
    try:
        for _ in range(flood):
            pool.submit(time.sleep, stall)
        start = time.monotonic()
        pool.submit(lambda: None).result()
        return time.monotonic() - start
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def victim_wait_fair(flood: int, stall: float, workers: int) -> float:
    pool = FairScheduler(workers)
    deadline = time.monotonic() + 3600
    try:
        jobs: list[Future[None]] = [
            pool.submit("flood", lambda: time.sleep(stall), deadline=deadline) for _ in range(flood)
        ]
        start = time.monotonic()
        pool.submit("shop", lambda: None, deadline=deadline).result()
        waited = time.monotonic() - start
        for j in jobs:
            j.cancel()
        return waited
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=64, help="stalled lookups queued first")
    parser.add_argument("--stall", type=float, default=1.0, help="seconds each one stalls")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    fifo = victim_wait_fifo(args.flood, args.stall, args.workers)
    fair = victim_wait_fair(args.flood, args.stall, args.workers)
    print(
        f"victim's wait behind {args.flood} lookups stalling {args.stall:g}s, "
        f"{args.workers} workers (budget {BUDGET:g}s):"
    )
    print(f"  first come, first served: {fifo:8.3f} s")
    print(f"  fair (per-namespace):     {fair:8.3f} s")


if __name__ == "__main__":
    main()
