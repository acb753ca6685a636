"""The operator's one supervised loop: back-off, reset, wake-ups, stop and cancellation.

Real asyncio; the wait is injected so the tests read the delays the loop asked for instead of
sleeping or timing anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from affidavit.errors import InputError
from affidavit.operator.supervise import Backoff, Step, failure_text, supervise, wait_any


class Recorder:
    """A waiter that records each requested delay and stops the loop after ``rounds`` waits."""

    def __init__(self, stop: asyncio.Event, rounds: int) -> None:
        self.stop = stop
        self.rounds = rounds
        self.delays: list[float] = []

    async def __call__(self, events: Sequence[asyncio.Event], timeout: float) -> None:
        self.delays.append(timeout)
        if len(self.delays) >= self.rounds:
            self.stop.set()
        await asyncio.sleep(0)


def scripted(outcomes: list[float | Exception | None]) -> tuple[list[int], Step]:
    calls: list[int] = []

    async def step() -> float | None:
        calls.append(len(calls))
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return calls, step


def test_backoff_grows_to_its_cap_and_constant_stays() -> None:
    b = Backoff(first=1.0, factor=2.0, cap=30.0)
    assert [b.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert [Backoff.constant(5.0).delay(n) for n in (1, 2, 9)] == [5.0, 5.0, 5.0]


def test_failures_back_off_and_a_success_starts_over() -> None:
    async def main() -> list[float]:
        stop = asyncio.Event()
        waiter = Recorder(stop, rounds=7)
        bug = RuntimeError("a bug")
        down = InputError("apiserver away")
        _, step = scripted([down, down, bug, None, down, 3.0, 500.0])
        await supervise(
            "test loop",
            step,
            stop,
            interval=60.0,
            backoff=Backoff(first=1.0, factor=2.0, cap=30.0),
            wait=waiter,
        )
        return waiter.delays

    # three failures: 1, 2, 4; success: the interval; failure after a success: 1 again;
    # a success asking for less than the interval gets it, asking for more gets the interval.
    assert asyncio.run(main()) == [1.0, 2.0, 4.0, 60.0, 1.0, 3.0, 60.0]


def test_expected_errors_warn_bugs_log_a_traceback_and_both_reach_on_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def main() -> None:
        stop = asyncio.Event()
        _, step = scripted([InputError("apiserver away"), KeyError("spec")])
        await supervise(
            "reconcile",
            step,
            stop,
            interval=60.0,
            backoff=Backoff(),
            on_failure=lambda e: seen.append(failure_text(e)),
            wait=Recorder(stop, rounds=2),
        )

    with caplog.at_level(logging.WARNING, logger="affidavit.operator"):
        asyncio.run(main())
    assert seen == ["apiserver away", "KeyError: 'spec'"]
    assert [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        ("WARNING", "reconcile failed, retrying in 1.0s: apiserver away", False),
        ("ERROR", "reconcile failed, retrying in 2.0s: 'spec'", True),
    ]


def test_wake_runs_the_step_at_once_and_is_cleared_before_it() -> None:
    async def main() -> list[bool]:
        stop, wake = asyncio.Event(), asyncio.Event()
        seen_wake: list[bool] = []

        async def step() -> None:
            seen_wake.append(wake.is_set())
            if len(seen_wake) == 1:
                wake.set()  # a change arrives while the step runs
            if len(seen_wake) == 2:
                stop.set()

        # the real waiter with an hour's timeout: only the wake event can end the first wait
        task = asyncio.create_task(
            supervise("r", step, stop, interval=3600.0, backoff=Backoff(), wake=wake)
        )
        await asyncio.wait_for(task, timeout=30)
        return seen_wake

    assert asyncio.run(main()) == [False, False]


def test_stop_ends_a_long_wait_and_the_loop_returns() -> None:
    async def main() -> int:
        stop = asyncio.Event()
        calls: list[int] = []

        async def step() -> None:
            calls.append(1)

        task = asyncio.create_task(supervise("r", step, stop, interval=3600.0, backoff=Backoff()))
        while not calls:
            await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        return len(calls)

    assert asyncio.run(main()) == 1


def test_cancelling_the_task_cancels_a_running_step_and_is_not_a_failure() -> None:
    async def main() -> tuple[bool, list[Exception]]:
        stop = asyncio.Event()
        started, cancelled = asyncio.Event(), asyncio.Event()
        failures: list[Exception] = []

        async def step() -> None:
            started.set()
            try:
                await asyncio.Event().wait()  # never returns by itself
            except asyncio.CancelledError:
                cancelled.set()
                raise

        task = asyncio.create_task(
            supervise("r", step, stop, interval=1.0, backoff=Backoff(), on_failure=failures.append)
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return cancelled.is_set(), failures

    assert asyncio.run(main()) == (True, [])


def test_wait_any_returns_at_once_when_an_event_is_already_set() -> None:
    async def main() -> None:
        done = asyncio.Event()
        done.set()
        await asyncio.wait_for(wait_any([asyncio.Event(), done], 3600.0), timeout=30)

    asyncio.run(main())
