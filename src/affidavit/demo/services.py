"""Local processes the demo and the end-to-end tests run for real: a registry, our own servers.

The demo must work on a machine with no Docker engine, so every service is a plain process on
127.0.0.1 with a random port. Each one leads its own process group, dies with its parent
(``PR_SET_PDEATHSIG``), and is stopped at interpreter exit, so an interrupted demo or a failed
test leaves nothing behind (see :mod:`affidavit.envtest.process`).
"""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

from affidavit.envtest.process import ManagedProcess, PortTaken, free_port
from affidavit.errors import ClusterError

# ManagedProcess lives in envtest (the control plane starts its components with it too); the
# demo stack imports it from here.
__all__ = ["LocalRegistry", "ManagedProcess", "ReferrersRegistry"]

#: How many free ports a registry is started on before a port taken meanwhile is an error.
_START_ATTEMPTS = 4


class _LoopbackRegistry:
    """A registry process on 127.0.0.1: its address, readiness, and stopping it."""

    def __init__(self) -> None:
        self._proc: ManagedProcess | None = None
        self.host = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _started(self, proc: ManagedProcess) -> None:
        """Keep ``proc`` and wait until it answers ``/v2/``."""
        self._proc = proc

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as r:  # noqa: S310 - loopback
                return bool(r.status == 200)

        proc.wait_until(ready, "the registry answered /v2/", timeout=30)

    def _start_on_a_free_port(self, start: Callable[[str], ManagedProcess]) -> None:
        """Run ``start(host)`` on a free port until one stays free until the registry binds it:
        anything else on the machine may ask the kernel for a free port, or connect out, between
        the choice and the bind."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.host = f"127.0.0.1:{free_port()}"
            try:
                self._started(start(self.host))
                return
            except ClusterError as e:
                self.stop()
                if not isinstance(e, PortTaken) or attempt == _START_ATTEMPTS:
                    raise

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None


class LocalRegistry(_LoopbackRegistry):
    """Debian's docker-registry (distribution 2.8: no referrers API) on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (a test freezes it to make a hung registry)."""
        return self._proc.popen.pid if self._proc is not None else None

    def start(self, port: int | None = None) -> LocalRegistry:
        """Start it (at ``port``: a restarted registry keeps its address; default a free one)."""
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        if not Path(binary).exists():
            raise ClusterError(
                "docker-registry is not installed",
                hint="run `make deps` (apt-get install docker-registry)",
            )
        self.root.mkdir(parents=True, exist_ok=True)

        def serve(host: str) -> ManagedProcess:
            config = self.root / "config.yml"
            config.write_text(
                "version: 0.1\n"
                "log:\n  level: error\n  accesslog:\n    disabled: true\n"
                "storage:\n"
                f"  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
                "  delete:\n    enabled: true\n"
                f"http:\n  addr: {host}\n"
            )
            return ManagedProcess(
                "docker-registry", [binary, "serve", str(config)], self.root / "registry.log"
            )

        if port is None:
            self._start_on_a_free_port(serve)
        else:
            self.host = f"127.0.0.1:{port}"
            self._started(serve(self.host))
        return self

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ReferrersRegistry(_LoopbackRegistry):
    """go-containerregistry's in-memory registry with the OCI 1.1 referrers API on 127.0.0.1
    (``scripts/oci-registry``): where the referrers API path is tested against a real server.

    Like the registries that serve the API (GHCR, Harbor, zot), it lists an image's referrers at
    ``/v2/NAME/referrers/DIGEST``; unlike them it sends no ``OCI-Subject`` header when a manifest
    with a subject is pushed, and lists each referrer's config media type as its
    ``artifactType``. Nothing it stores outlives the process."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir

    def start(self) -> ReferrersRegistry:
        from affidavit.envtest.binaries import find_oci_registry

        binary = find_oci_registry()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._start_on_a_free_port(
            lambda host: ManagedProcess(
                "oci-registry", [str(binary), "--address", host], self.workdir / "registry.log"
            )
        )
        return self

    def __enter__(self) -> ReferrersRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
