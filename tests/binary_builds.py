"""The real node's and the private Sigstore's binaries, built while the rest of the suite runs.

On a fresh machine they are the last 15 or so minutes of Go building before any test could
start (``scripts/k8s-binaries node``: kubelet, kube-scheduler, kube-proxy, containerd, CoreDNS;
``scripts/sigstore-binaries``: Fulcio, Rekor v2, a timestamp authority, TesseraCT). Most tests
need neither, and spend their time waiting on real servers, so ``make test`` no longer builds them
first: with ``AFFIDAVIT_BUILD_BINARIES=1`` (which the Makefile's ``test`` target sets) the session
starts both scripts in the background when collection is done, one after the other (Sigstore
first: its tests come earlier), and the tests that need them run last (``conftest.py``) and wait
here. Both scripts return at once when their pins are already built, so a warm run loses nothing.
Without the variable nothing is built: the fixtures find the binaries or skip (fail in CI) with
the command that builds them, as before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT = 3600
#: what each kind of binary is built by
SCRIPTS = {
    "sigstore": ("scripts/sigstore-binaries",),
    "node": ("scripts/k8s-binaries", "node"),
}
# Test paths that need each, in the order they run (after every other test, before the image's).
SIGSTORE_TESTS = (
    "tests/integration/envtest/test_private_sigstore_main.py",
    "tests/integration/envtest/test_private_sigstore_loopback.py",
    "tests/e2e/keyless/",
    "tests/e2e/admission/test_e2e_admission_keyless.py",
    "tests/e2e/admission/test_e2e_admission_certified_source.py",
)
#: what a test file says when it starts the private Sigstore (tests/unit/test_test_lanes.py holds
#: every such file to SIGSTORE_TESTS: one left out runs in lane 2, which builds nothing, and
#: errors on a machine whose cache lacks the binaries)
SIGSTORE_USES = ("sigstore_binaries_or_skip(", "started_private_sigstore(")
NODE_TESTS = ("tests/e2e/node/",)


def wanted() -> bool:
    """Whether this session builds missing binaries itself (``make test`` asks it to)."""
    return os.environ.get("AFFIDAVIT_BUILD_BINARIES") == "1"


class BinaryBuilds:
    """Runs the scripts one after the other in a thread; each kind's Future says it is done."""

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self.done: dict[str, Future[None]] = {kind: Future() for kind in kinds}
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False
        threading.Thread(target=self._run, name="binary-builds", daemon=True).start()

    def _build(self, kind: str) -> None:
        with tempfile.TemporaryFile() as log:
            with self._lock:
                if self._stopped:
                    raise AssertionError(f"the test session ended before the {kind} build")
                self._proc = subprocess.Popen(
                    ["bash", *SCRIPTS[kind]],
                    cwd=REPO,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            code = self._proc.wait(timeout=BUILD_TIMEOUT)
            if code != 0:
                log.seek(0)
                tail = log.read()[-4000:].decode(errors="replace")
                raise AssertionError(f"{' '.join(SCRIPTS[kind])} exited {code}\n{tail}")

    def _run(self) -> None:
        for kind, future in self.done.items():
            try:
                self._build(kind)
                future.set_result(None)
            except BaseException as e:  # handed to the test that waits for these binaries
                future.set_exception(e)

    def stop(self) -> None:
        """End a build still running (the session is over)."""
        with self._lock:
            self._stopped = True
            if self._proc is not None and self._proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGTERM)


_background: BinaryBuilds | None = None


def start_binary_builds(kinds: tuple[str, ...]) -> None:
    """Start building ``kinds`` (in that order) now, once per session, when :func:`wanted`."""
    global _background
    if _background is None and kinds and wanted():
        _background = BinaryBuilds(kinds)


def stop_binary_builds() -> None:
    if _background is not None:
        _background.stop()


def wait_for_binaries(kind: str) -> None:
    """Block until the background build of ``kind`` is over (its failure is raised here);
    returns at once when this session builds nothing."""
    if _background is not None and kind in _background.done:
        _background.done[kind].result(timeout=BUILD_TIMEOUT)


def sigstore_binaries_or_skip() -> None:
    """Wait for this session's build of the private Sigstore's binaries, then find them: a test
    without them fails in CI (``CI=true``) and elsewhere skips, with the command that builds them."""
    import pytest

    from affidavit.envtest import BinariesMissingError
    from affidavit.envtest.sigstore import find_sigstore_binaries

    try:
        wait_for_binaries("sigstore")
        find_sigstore_binaries()
    except BinariesMissingError as e:
        building = _background is not None and "sigstore" in _background.done
        unlisted = (
            "\n  this session builds them only for the files in tests/binary_builds.py "
            "SIGSTORE_TESTS: list this test's file there"
            if wanted() and not building
            else ""
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{e}{unlisted}")
        pytest.skip(str(e))
