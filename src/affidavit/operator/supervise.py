"""One supervised loop for the operator's background work: run a step, wait, back off on failure.

The reconciler, the certificate manager and the event reporter each run a step over and over
until the operator stops. They share the same obligations, kept here once:

- a failing step never ends the loop: an ``AffidavitError`` or ``OSError`` (the apiserver or
  the ledger away) is logged as a warning, anything else (a bug) with its traceback, and the
  step runs again after a back-off that grows from ``Backoff.first`` by ``factor`` up to
  ``cap`` and starts over after a success;
- a successful step says how long to wait before the next run (``None``: ``interval``);
- the wait ends early when ``stop`` is set (the loop returns) or a ``wake`` event is set (the
  step runs at once: the reconciler's "something changed");
- cancelling the task cancels the wait or the step at once (``CancelledError`` is never taken
  for a failed step).

The wait is injectable (``Waiter``) so that tests drive the loop on a real event loop without
sleeping and read the delays it asked for, rather than measuring the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from affidavit.errors import AffidavitError

log = logging.getLogger("affidavit.operator")

#: One run of the loop's work: returns the seconds to wait before the next run, or ``None``.
Step = Callable[[], Awaitable[float | None]]
#: Waits until one of the events is set or ``timeout`` seconds have passed.
Waiter = Callable[[Sequence[asyncio.Event], float], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Delays after consecutive failures: ``first``, ``first * factor``, ... at most ``cap``."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1 for the first)."""
        return min(self.first * self.factor ** max(0, failures - 1), self.cap)

    @classmethod
    def constant(cls, seconds: float) -> Backoff:
        return cls(first=seconds, factor=1.0, cap=seconds)


async def wait_any(events: Sequence[asyncio.Event], timeout: float) -> None:
    """Return when any of ``events`` is set, or after ``timeout`` seconds."""
    if any(e.is_set() for e in events):
        return
    tasks = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


def failure_text(error: BaseException) -> str:
    """How a failed step is reported (readiness): an expected error's own words, a bug's type."""
    if isinstance(error, AffidavitError | OSError):
        return str(error)
    return f"{type(error).__name__}: {error}"


async def supervise(
    name: str,
    step: Step,
    stop: asyncio.Event,
    *,
    interval: float,
    backoff: Backoff,
    wake: asyncio.Event | None = None,
    on_failure: Callable[[Exception], None] | None = None,
    wait: Waiter = wait_any,
) -> None:
    """Run ``step`` until ``stop`` is set; see the module docstring."""
    failures = 0
    events = [stop] if wake is None else [stop, wake]
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            asked = await step()
        except Exception as e:  # a failed step (or a bug) must not end the loop
            failures += 1
            delay = backoff.delay(failures)
            if isinstance(e, AffidavitError | OSError):
                log.warning("%s failed, retrying in %.1fs: %s", name, delay, e)
            else:
                log.exception("%s failed, retrying in %.1fs: %s", name, delay, e)
            if on_failure is not None:
                on_failure(e)
        else:
            failures = 0
            delay = interval if asked is None else max(0.0, min(asked, interval))
        await wait(events, delay)
