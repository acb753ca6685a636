"""The one thing a node leaves outside its namespaces: the Pods' cgroups, and their removal.

cgroup directories are machine-wide (a cgroup namespace only changes the view). kubelet puts
every Pod under its ``cgroupRoot``, which the node names ``/affidavit-node-<pid>-<random>``, so
removing that tree in every mounted hierarchy (cgroup v1 has one per controller) puts the
machine back. A run killed before it could clean up leaves an empty tree whose owner PID is
dead: the next node removes it.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = ["PREFIX", "create", "hierarchies", "remove", "remove_stale"]

PREFIX = "affidavit-node-"


def hierarchies() -> list[Path]:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy of this mount namespace."""
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] in {"cgroup", "cgroup2"}:
            points.append(Path(fields[1]))
    return points


def create(root: str) -> None:
    """Make ``root`` in every hierarchy (kubelet refuses a cgroupRoot that does not exist).

    A new cpuset cgroup (v1) has no CPUs or memory nodes until given its parent's.
    """
    for hierarchy in hierarchies():
        top = hierarchy / root.strip("/")
        top.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            parent, mine = hierarchy / name, top / name
            if parent.exists() and mine.exists() and not mine.read_text().strip():
                mine.write_text(parent.read_text())


def remove(root: str, *, timeout: float = 30.0) -> list[Path]:
    """Remove the cgroup tree ``root`` (``/affidavit-node-...``) from every hierarchy.

    Waits up to ``timeout`` for exiting tasks to leave; returns the directories that remain.
    """
    left = []
    for hierarchy in hierarchies():
        top = hierarchy / root.strip("/")
        if top.is_dir():
            left += _rmtree(top, timeout)
    return left


def remove_stale() -> None:
    """Remove the trees of nodes whose process is gone."""
    for hierarchy in hierarchies():
        for top in hierarchy.glob(f"{PREFIX}*"):
            pid = top.name[len(PREFIX) :].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                _rmtree(top, 5.0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rmtree(top: Path, timeout: float) -> list[Path]:
    deadline = time.monotonic() + timeout
    while True:
        dirs = [Path(d) for d, _, _ in os.walk(top)]
        left = []
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(FileNotFoundError):
                try:
                    d.rmdir()
                except OSError:
                    left.append(d)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
