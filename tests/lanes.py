"""Two lanes: ``make test`` runs the suite as two pytest processes side by side.

Why: most tests spend their time waiting on real servers (an apiserver's watch, a kubelet
starting a Pod, a registry, PostgreSQL's fsync), so one pytest process keeps about one of the
machine's two cores busy (105 % CPU over a whole warm run). Two processes use both. Each lane
is a whole pytest session of its own: its own registry, PostgreSQL and control planes on random
loopback ports, its own temporary directories, so nothing is shared but the read-only caches.

Which lane a test runs in is decided here, by its path, never by chance, so a failure is
reproduced with the same ``--lane``:

- Lane 1 holds every test that needs something the session builds in the background (the image,
  the node's and the private Sigstore's binaries; ``conftest.py``), because the builds run in the
  session that needs them, and every test under a directory not named below.
- Lane 2 holds the directories in :data:`LANE_2`, chosen so that both lanes end near the same
  time (lane 1 also carries the image builds, about ten minutes of background work).

Without ``--lane`` a session runs every test, as before. ``scripts/test-lanes`` runs both lanes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

#: test directories (and files) that run in lane 2, unless they need a session build
LANE_2 = (
    "tests/e2e/admission/",
    "tests/e2e/decisions/",
    "tests/e2e/policy/",
    "tests/integration/admission/",
    "tests/unit/",
)


def add_lane_option(parser: pytest.Parser) -> None:
    parser.addoption(
        "--lane",
        type=int,
        choices=(1, 2),
        default=None,
        help="run only this lane's tests (tests/lanes.py); scripts/test-lanes runs both at once",
    )


def lane_of(item: pytest.Item, needs_session_build: Callable[[pytest.Item], bool]) -> int:
    """1 or 2: the lane ``item`` runs in."""
    if needs_session_build(item):
        return 1
    path = Path(item.path).as_posix()
    return 2 if any(f"/{prefix}" in path for prefix in LANE_2) else 1


def keep_lane(
    config: pytest.Config,
    items: list[pytest.Item],
    needs_session_build: Callable[[pytest.Item], bool],
) -> None:
    """Deselect (in place) the tests of the other lane when ``--lane`` is given."""
    lane: int | None = config.getoption("lane")
    if lane is None:
        return
    kept: list[pytest.Item] = []
    other: list[pytest.Item] = []
    for item in items:
        (kept if lane_of(item, needs_session_build) == lane else other).append(item)
    if other:
        config.hook.pytest_deselected(items=other)
    items[:] = kept
