"""Child processes that never outlive their owner: control-plane components and local services.

The control plane (etcd, kube-apiserver, ...) and the demo's services (a registry, our own
webhook and operator) are plain processes on 127.0.0.1. None may outlive the Python process
that started it, even when a test fails or is interrupted, so :class:`ManagedProcess` is the one
way both start children: each child leads its own process group, is stopped with SIGTERM then
SIGKILL, every live child is stopped at interpreter exit (newest first), and
``PR_SET_PDEATHSIG`` makes the kernel kill it if the Python process dies without running any of
that (SIGKILL, a crash).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from affidavit.envtest.ports import free_port
from affidavit.errors import ClusterError

__all__ = [
    "STOP_TIMEOUT",
    "ManagedProcess",
    "PortTaken",
    "StopSignal",
    "child_setup",
    "free_port",
    "port_taken",
    "wait_for",
]

#: How long a child gets between SIGTERM and SIGKILL.
STOP_TIMEOUT = 15.0


class PortTaken(ClusterError):
    """A child exited because something else bound the port chosen for it between the choice
    and its own bind: its owner starts it again on another (:func:`free_port`)."""


def port_taken(log_tail: str) -> bool:
    """Whether a child's last log lines say it could not bind its port (Go's and etcd's words)."""
    return "address already in use" in log_tail


class StopSignal:
    """SIGTERM noted from the moment this is made; ``wait()`` blocks until it (or SIGINT) comes.

    The handler only sets a flag. A handler that takes a lock, as ``threading.Event.set`` does,
    can run while the main thread itself holds that lock inside ``Event.wait`` and then waits on
    it forever: seen once in CI, a private Sigstore that never stopped. A SIGTERM that comes
    while the services start is kept, and ``wait()`` then returns at once.

    SIGINT is made to raise ``KeyboardInterrupt`` again where it was ignored: a shell without job
    control starts its background jobs with SIGINT ignored, and Python then leaves it so; a node
    started that way (a CI script's ``&``) did not stop on SIGINT, and everything in its
    namespaces ran on.
    """

    def __init__(self) -> None:
        self.stopped = False
        signal.signal(signal.SIGTERM, self._note)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _note(self, signum: int, frame: object) -> None:
        self.stopped = True

    def wait(self) -> None:
        with contextlib.suppress(KeyboardInterrupt):
            while not self.stopped:
                time.sleep(0.2)  # a signal ends the sleep early; the flag is then read


def wait_for(
    check: Callable[[], Any], what: str, timeout: float = 60.0, *, interval: float = 0.2
) -> Any:
    """Poll ``check`` until it returns something truthy and return that; fail naming ``what``.

    The one wait of the tests and benchmarks: they never assert how long anything took, they
    wait for a state with a generous ``timeout`` and say what never came (and the last value).
    """
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}"
            )
        time.sleep(interval)


_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def child_setup(parent_pid: int) -> Callable[[], None]:
    """``preexec_fn``: die with SIGKILL when the parent thread dies (Linux), even if it was
    SIGKILLed. If the parent already died before ``prctl`` ran, exit at once."""

    def setup() -> None:
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)

    return setup


# Live children in start order (a dict keeps insertion order), stopped newest first at exit.
_live: dict[ManagedProcess, None] = {}
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        processes = list(_live)
    for proc in reversed(processes):
        proc.stop()


class ManagedProcess:
    """One child process with its log file; stopped with SIGTERM, then SIGKILL.

    Output (stdout and stderr) is appended to ``log_path`` after a ``=== HH:MM:SS argv`` line,
    so the log of a restarted child shows each run.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        *,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        self._log.flush()
        try:
            self.popen = subprocess.Popen(
                list(argv),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
                # preexec_fn only calls prctl: safe enough even with threads around.
                preexec_fn=child_setup(os.getpid()),
            )
        except OSError as e:
            self._log.close()
            raise ClusterError(f"cannot start {name} ({argv[0]}): {e.strerror or e}") from e
        with _live_lock:
            _live[self] = None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
        """Poll ``check`` until it holds; fail with the log tail if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                tail = self.log_tail()
                error = PortTaken if port_taken(tail) else ClusterError
                raise error(
                    f"{self.name} exited with {self.popen.returncode} before {what}:\n{tail}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.2)
        raise ClusterError(
            f"{self.name}: {what} did not happen within {timeout:.0f}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout=STOP_TIMEOUT)
        self._log.close()
        with _live_lock:
            _live.pop(self, None)

    def _signal(self, sig: signal.Signals) -> None:
        # The child leads its own process group (start_new_session), so anything it forked
        # gets the signal too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)
