"""Loopback ports for the services tests, benchmarks and the demo start: free until they bind.

A port is chosen before the service that will listen on it starts, so it must stay free
meanwhile. The kernel's choice (bind to port 0) does not: it comes from the ephemeral range
(``net.ipv4.ip_local_port_range``), where every outgoing connection of every process takes its
local port too, and where the next bind to port 0 of another process (the other test lane, a
subprocess starting its own services) may be handed the same port. Both happened in CI: a
private Sigstore whose timestamp server could not bind its port, a whole run lost.

So :func:`free_port` hands out ports *below* the ephemeral range, where neither an outgoing
connection nor a bind to port 0 ever lands, chosen at random, checked free by binding, and
remembered for :data:`HELD_FOR` seconds in a file every process of this user shares (under an
``flock``), so no two processes are handed the same port while either could still be starting.
Where the ephemeral range leaves no room below it, the kernel chooses, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["HELD_FOR", "free_port"]

#: How long a handed-out port is never handed out again (to any process of this user).
HELD_FOR = 900.0
#: The lowest port handed out (above the well-known and most registered services' ports).
LOWEST = 20000
#: The fewest ports the range below the ephemeral one must hold to be used at all.
_FEWEST = 2000
_ATTEMPTS = 200


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _handed_file() -> Path:
    return Path(tempfile.gettempdir()) / f"affidavit-ports-{os.getuid()}.json"


@contextlib.contextmanager
def _handed() -> Iterator[dict[str, float]]:
    """The ports handed out lately (port -> when), locked against every other process. A
    record that cannot be opened as this user's own file (another user's, or a link planted in
    the shared temp directory: never followed) gives an empty one that nobody else sees."""
    path = _handed_file()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        yield {}
        return
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            handed = json.loads(f.read() or "{}")
            if not isinstance(handed, dict):
                handed = {}
        except ValueError:  # a file cut short by a process killed while writing it
            handed = {}
        now = time.time()
        recent = {
            p: t for p, t in handed.items() if isinstance(t, int | float) and now - t < HELD_FOR
        }
        yield recent
        f.seek(0)
        f.truncate()
        f.write(json.dumps(recent))


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _kernels_choice(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` (a loopback address), free now, that no other caller of this
    function in any process of this user was handed in the last :data:`HELD_FOR` seconds;
    outside the ephemeral range, so no outgoing connection or bind to port 0 takes it
    meanwhile."""
    high = _ephemeral_low()
    if high - LOWEST < _FEWEST:
        return _kernels_choice(host)
    with _handed() as recent:
        for _ in range(_ATTEMPTS):
            port = random.randrange(LOWEST, high)  # noqa: S311 - a port, not a secret
            if str(port) not in recent and _bindable(host, port):
                recent[str(port)] = time.time()
                return port
    return _kernels_choice(host)
