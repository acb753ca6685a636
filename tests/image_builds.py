"""The image under test: built once per input hash by operator/build-image, read without a daemon.

The build takes minutes (mmdebstrap, the wheelhouse), so its OCI layout is cached under
``~/.cache/affidavit/image/<inputs-hash>/`` by the build script itself; a warm session finds it
and spends seconds. The layout is read here as plain files (index.json -> manifest -> config and
layer blobs), and the root file system is unpacked with umoci (root, so owners are kept) and run
with ``chroot`` read-only, as uid 65532, in a mount namespace of its own: no container runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "operator" / "build-image"
TAG = "affidavit"
TOOLS = ("mmdebstrap", "umoci", "skopeo", "unshare", "chroot")


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


def build_layout() -> Layout:
    """The image for the current tree (built now, or found in the cache)."""
    path = Path(run_build("--print-layout"))
    run_build()
    return Layout(path)


def rebuild_layout(first: Layout) -> Layout:
    """A second, independent build of the same inputs (cached beside the first)."""
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
    the caller's (loopback reaches the test's control plane and registry). When the unshare
    process is terminated, the command gets SIGTERM.
    """
    return [
        "unshare", "--mount", "--propagation", "private", "--fork", "--kill-child=SIGTERM",
        "sh", "-c", _ROOTFS_SCRIPT, "rootfs", str(rootfs), user, str(tmp or ""), *env,
        "/bin/sh", "-c", 'cd /tmp && exec "$@"', "sh", *argv,
    ]  # fmt: skip


def image_env(layout: Layout) -> list[str]:
    """The image's configured environment (what a container runtime would set)."""
    return [str(e) for e in layout.config["config"]["Env"]]
