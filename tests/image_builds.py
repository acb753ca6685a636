"""The image under test: built once per input hash by operator/build-image, read without a daemon.

The build takes minutes (mmdebstrap, the wheelhouse), so its OCI layout is cached under
``~/.cache/affidavit/image/<inputs-hash>/`` by the build script itself; a warm session finds it
and spends seconds. Every commit changes the inputs, so CI always builds twice (the image, and a
second build that must give the same digest): :class:`BackgroundBuilds` starts both when the
session's collection is done, and the tests that need the image run last (``conftest.py``), so
the minutes of building overlap the minutes the other tests spend waiting on real servers. The layout is read here as plain files (index.json -> manifest -> config and
layer blobs), and the root file system is unpacked with umoci (root, so owners are kept) and run
with ``chroot`` read-only, as uid 65532, in a mount namespace of its own: no container runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "operator" / "build-image"
TAG = "affidavit"
TOOLS = ("mmdebstrap", "umoci", "skopeo", "unshare", "chroot")
# Test directories that need the image, in the order they run (after every other test).
IMAGE_TEST_DIRS = ("tests/e2e/image/", "tests/e2e/node/", "tests/integration/image/")
BUILD_TIMEOUT = 1800


def why_not_buildable() -> str | None:
    """None when this machine can build and run the image; else what is missing."""
    if os.geteuid() != 0:
        return "building the image needs root (mmdebstrap's root mode, umoci unpack, chroot)"
    absent = [t for t in TOOLS if shutil.which(t) is None]
    if absent:
        return f"{', '.join(absent)} not installed; run `make debs` (scripts/install-debs)"
    return None


def run_build(*args: str) -> str:
    """Run operator/build-image; return the last line of stdout (the digest or the path)."""
    proc = subprocess.run(
        [str(BUILD), *args], capture_output=True, text=True, timeout=1800, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"operator/build-image {' '.join(args)} exited {proc.returncode}\n{proc.stderr[-4000:]}"
        )
    return proc.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Layout:
    """An OCI image layout holding one image, tag ``affidavit``."""

    path: Path

    def blob(self, digest: str) -> bytes:
        algorithm, hexdigest = digest.split(":", 1)
        return (self.path / "blobs" / algorithm / hexdigest).read_bytes()

    @property
    def digest(self) -> str:
        index = json.loads((self.path / "index.json").read_text())
        (entry,) = index["manifests"]
        return str(entry["digest"])

    @property
    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads(self.blob(self.digest))
        return manifest

    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads(self.blob(self.manifest["config"]["digest"]))
        return config

    def compressed_size(self) -> int:
        return sum(int(layer["size"]) for layer in self.manifest["layers"])


class BackgroundBuilds:
    """The session's two builds (the image, then the same inputs again), one after the other in
    a thread of their own; the fixtures wait for the one they need. The build processes get a
    session of their own so :meth:`stop` can end them with everything they started."""

    def __init__(self) -> None:
        self.first: Future[Layout] = Future()
        self.again: Future[Layout] = Future()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._stopped = False
        threading.Thread(target=self._run, name="image-builds", daemon=True).start()

    def _build(self, *args: str) -> str:
        with self._lock:
            if self._stopped:
                raise AssertionError("the test session ended before the image was built")
            self._proc = subprocess.Popen(
                [str(BUILD), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        out, err = self._proc.communicate(timeout=BUILD_TIMEOUT)
        if self._proc.returncode != 0:
            raise AssertionError(
                f"operator/build-image {' '.join(args)} exited {self._proc.returncode}\n"
                f"{err[-4000:]}"
            )
        return out.strip().splitlines()[-1]

    def _run(self) -> None:
        try:
            path = Path(self._build("--print-layout"))
            again = path.parent / "rebuild"
            for future, args, layout in (
                (self.first, (), path),
                (self.again, ("--output", str(again)), again),
            ):
                try:
                    self._build(*args)
                    future.set_result(Layout(layout))
                except BaseException as e:  # handed to the test that waits for this build
                    future.set_exception(e)
        except BaseException as e:
            for future in (self.first, self.again):
                if not future.done():
                    future.set_exception(e)

    def stop(self) -> None:
        """End a build still running (the session is over)."""
        with self._lock:
            self._stopped = True
            if self._proc is not None and self._proc.poll() is None:
                os.killpg(self._proc.pid, signal.SIGTERM)


_background: BackgroundBuilds | None = None


def start_background_builds() -> None:
    """Start the session's builds now (once); :func:`build_layout` and friends then wait."""
    global _background
    if _background is None and why_not_buildable() is None:
        _background = BackgroundBuilds()


def stop_background_builds() -> None:
    if _background is not None:
        _background.stop()


def wait_for_background_build() -> None:
    """Wait for the first background build, if one was started (its error is the fixture's)."""
    if _background is not None:
        _background.first.result(timeout=BUILD_TIMEOUT)


def build_layout() -> Layout:
    """The image for the current tree (built now, in the background, or found in the cache)."""
    if _background is not None:
        return _background.first.result(timeout=BUILD_TIMEOUT)
    path = Path(run_build("--print-layout"))
    run_build()
    return Layout(path)


def rebuild_layout(first: Layout) -> Layout:
    """A second, independent build of the same inputs (cached beside the first)."""
    if _background is not None:
        again = _background.again.result(timeout=BUILD_TIMEOUT)
        assert again.path == first.path.parent / "rebuild"
        return again
    path = first.path.parent / "rebuild"
    run_build("--output", str(path))
    return Layout(path)


def unpacked_rootfs(layout: Layout) -> Path:
    """The image's root file system, unpacked once per layout with umoci (owners kept)."""
    bundle = layout.path.parent / "bundle"
    stamp = bundle / ".unpacked"
    if not (stamp.exists() and stamp.read_text() == layout.digest):
        shutil.rmtree(bundle, ignore_errors=True)
        subprocess.run(
            ["umoci", "unpack", "--image", f"{layout.path}:{TAG}", str(bundle)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        stamp.write_text(layout.digest)
    return bundle / "rootfs"


_ROOTFS_SCRIPT = """set -e
R="$1"; U="$2"; T="$3"; shift 3
mount --bind "$R" "$R"
mount --rbind /proc "$R/proc"
mount --rbind /dev "$R/dev"
if [ -n "$T" ]; then mount --bind "$T" "$R/tmp"; else mount -t tmpfs -o size=64m tmpfs "$R/tmp"; fi
mount -o remount,bind,ro "$R"
exec chroot --userspec="$U" "$R" /usr/bin/env -i "$@"
"""


def rootfs_argv(
    rootfs: Path,
    argv: Sequence[str],
    *,
    env: Sequence[str],
    user: str = "65532:65532",
    tmp: Path | None = None,
) -> list[str]:
    """The command that runs ``argv`` in ``rootfs`` as a Pod would: the root file system
    read-only, only /tmp writable (``tmp`` bind-mounted, or an empty tmpfs), the image's
    environment only (``env``: NAME=value), as ``user``, working directory /tmp.

    A private mount namespace holds the mounts, so nothing outside it changes; the network is
    the caller's (loopback reaches the test's control plane and registry). unshare ignores
    SIGTERM while it waits for the command (util-linux 2.38): start it in a session of its own
    and signal the group to reach the command; should unshare be killed, the command gets
    SIGTERM (``--kill-child``).
    """
    return [
        "unshare", "--mount", "--propagation", "private", "--fork", "--kill-child=SIGTERM",
        "sh", "-c", _ROOTFS_SCRIPT, "rootfs", str(rootfs), user, str(tmp or ""), *env,
        "/bin/sh", "-c", 'cd /tmp && exec "$@"', "sh", *argv,
    ]  # fmt: skip


def image_env(layout: Layout) -> list[str]:
    """The image's configured environment (what a container runtime would set)."""
    return [str(e) for e in layout.config["config"]["Env"]]
