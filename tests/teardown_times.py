"""How long each session-scoped fixture took to tear down, printed at the end of the session.

Why: pytest's ``--durations`` charges the whole session teardown (the node, the control planes,
PostgreSQL, the private Sigstore, the registries) to the last test that ran, as one figure of
20 to 50 seconds. Which server takes the time is what the test-time budget needs to know.

pytest runs a fixture's ``pytest_fixture_post_finalizer`` after all of that fixture's own
finalizers, so the time between one such call and the next is the later fixture's teardown.
"""

from __future__ import annotations

import time

import pytest

#: a teardown shorter than this is not worth a line
SHOWN_FROM_SECONDS = 0.5

_last = time.monotonic()
_session: list[tuple[str, float]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A test's call (or its setup) is over: what comes next is teardown."""
    global _last
    if report.when in ("setup", "call"):
        _last = time.monotonic()


def pytest_fixture_post_finalizer(fixturedef: pytest.FixtureDef[object]) -> None:
    global _last
    now = time.monotonic()
    if fixturedef.scope == "session" and fixturedef.cached_result is not None:
        _session.append((fixturedef.argname, now - _last))
    _last = now


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    shown = [(name, seconds) for name, seconds in _session if seconds >= SHOWN_FROM_SECONDS]
    if not shown:
        return
    total = sum(seconds for _, seconds in _session)
    terminalreporter.write_sep("=", f"session fixtures torn down in {total:.1f}s")
    for name, seconds in shown:
        terminalreporter.write_line(f"{seconds:6.1f}s  {name}")
