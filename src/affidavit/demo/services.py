"""Local processes the demo and the end-to-end tests run for real: a registry, our own servers.

The demo must work on a machine with no Docker engine, so every service is a plain process on
127.0.0.1 with a random port. Each one leads its own process group, dies with its parent
(``PR_SET_PDEATHSIG``), and is stopped at interpreter exit, so an interrupted demo or a failed
test leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from affidavit.envtest import free_port
from affidavit.envtest.controlplane import child_setup
from affidavit.errors import ClusterError

STOP_TIMEOUT = 15.0

_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        processes = list(_live)
    for proc in processes:
        proc.stop()


class ManagedProcess:
    """One child process with its log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self.popen = subprocess.Popen(
                list(argv),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                preexec_fn=child_setup(os.getpid()),
            )
        except OSError as e:
            self._log.close()
            raise ClusterError(f"cannot start {name} ({argv[0]}): {e.strerror or e}") from e
        with _live_lock:
            _live.add(self)

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
                raise ClusterError(
                    f"{self.name} exited with {self.popen.returncode} before {what}:\n"
                    f"{self.log_tail()}"
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
            _live.discard(self)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


class LocalRegistry:
    """Debian's docker-registry (distribution 2.8: no referrers API) on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._proc: ManagedProcess | None = None
        self.host = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> LocalRegistry:
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        if not Path(binary).exists():
            raise ClusterError(
                "docker-registry is not installed",
                hint="run `make deps` (apt-get install docker-registry)",
            )
        self.root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.host = f"127.0.0.1:{port}"
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
        )
        self._proc = ManagedProcess(
            "docker-registry", [binary, "serve", str(config)], self.root / "registry.log"
        )

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as r:  # noqa: S310 - loopback
                return bool(r.status == 200)

        self._proc.wait_until(ready, "the registry answered /v2/", timeout=30)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
