"""Where the control-plane binaries are, and which versions are pinned.

etcd, kube-apiserver, kube-controller-manager, kubectl and helm are not installed system-wide:
``scripts/k8s-binaries`` builds them once from the Go module proxy into
``~/.cache/affidavit/k8s/<kubernetes version>/bin``. The versions are pinned in one file,
``scripts/versions.env``, which that script sources and this module reads, so Python and the
build can never disagree about which directory holds the binaries.
"""

from __future__ import annotations

import os
from pathlib import Path

from affidavit.errors import ClusterError

__all__ = [
    "CONTROL_PLANE_BINARIES",
    "BinariesMissingError",
    "cache_root",
    "find_binaries",
    "find_cosign",
    "find_node_binaries",
    "find_oci_registry",
    "k8s_bin_dir",
    "node_root",
    "pinned_versions",
    "versions_file",
]

#: Binaries a full control plane (with kubectl for the tests) needs.
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
#: Binaries a real node needs beside them (``scripts/k8s-binaries node``).
NODE_BINARIES = (
    "kubelet",
    "kube-scheduler",
    "kube-proxy",
    "containerd",
    "containerd-shim-runc-v2",
    "coredns",
)

_BUILD_HINT = (
    "run `bash scripts/k8s-binaries` from the repository root (builds them with Go from the "
    "module proxy; the first build takes several minutes), or point AFFIDAVIT_K8S_BIN at a "
    "directory that holds them"
)


class BinariesMissingError(ClusterError):
    """The control-plane binaries are not built (or not where they were looked for)."""


def versions_file() -> Path | None:
    """``scripts/versions.env`` of the source tree this module runs from, if there is one."""
    override = os.environ.get("AFFIDAVIT_VERSIONS_FILE")
    if override:
        return Path(override)
    # src/affidavit/envtest/binaries.py -> repository root is three levels above the package.
    candidate = Path(__file__).resolve().parents[3] / "scripts" / "versions.env"
    return candidate if candidate.is_file() else None


def pinned_versions() -> dict[str, str]:
    """The ``KEY=value`` pins of ``scripts/versions.env`` (K8S_VERSION, ETCD_VERSION, ...)."""
    path = versions_file()
    if path is None or not path.is_file():
        raise BinariesMissingError(
            "cannot find scripts/versions.env, which pins the Kubernetes version",
            hint="run from a source checkout, or set AFFIDAVIT_K8S_BIN to the binaries' directory",
        )
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        pins[key.strip()] = value.strip().strip("'\"")
    if "K8S_VERSION" not in pins:
        raise BinariesMissingError(f"{path} sets no K8S_VERSION")
    return pins


def cache_root() -> Path:
    """``$AFFIDAVIT_CACHE_DIR`` or ``~/.cache/affidavit`` (the same rule as the build script)."""
    override = os.environ.get("AFFIDAVIT_CACHE_DIR")
    return Path(override) if override else Path.home() / ".cache" / "affidavit"


def k8s_bin_dir() -> Path:
    """Where ``scripts/k8s-binaries`` puts the binaries for the pinned Kubernetes version."""
    return cache_root() / "k8s" / pinned_versions()["K8S_VERSION"] / "bin"


def find_binaries(required: tuple[str, ...] = CONTROL_PLANE_BINARIES) -> Path:
    """The directory holding every binary in ``required``.

    ``$AFFIDAVIT_K8S_BIN`` wins when set; otherwise the cache directory for the pinned version.
    Raises :class:`BinariesMissingError` naming what is missing and how to build it.
    """
    override = os.environ.get("AFFIDAVIT_K8S_BIN")
    directory = Path(override) if override else k8s_bin_dir()
    missing = [name for name in required if not os.access(directory / name, os.X_OK)]
    if missing:
        raise BinariesMissingError(
            f"control-plane binaries missing from {directory}: {', '.join(missing)}",
            hint=_BUILD_HINT,
        )
    return directory


def _tool(name: str, pin: str, what: str, hint: str, override: str | None = None) -> Path:
    """``tools/NAME-<PIN's version>/bin/NAME`` in the cache (or ``override``), executable."""
    if override:
        path = Path(override)
    else:
        version = pinned_versions().get(pin)
        if not version:
            raise BinariesMissingError(f"scripts/versions.env sets no {pin}")
        path = cache_root() / "tools" / f"{name}-{version}" / "bin" / name
    if not os.access(path, os.X_OK):
        raise BinariesMissingError(f"{what} is missing: {path}", hint=hint)
    return path


def find_cosign() -> Path:
    """The cosign binary ``scripts/k8s-binaries cosign`` built for the pinned COSIGN_VERSION.

    ``$AFFIDAVIT_COSIGN`` (a path to a cosign binary) wins when set.
    """
    hint = (
        "run `bash scripts/k8s-binaries cosign` from the repository root (builds it with Go "
        "from the module proxy), or set AFFIDAVIT_COSIGN"
    )
    return _tool("cosign", "COSIGN_VERSION", "cosign", hint, os.environ.get("AFFIDAVIT_COSIGN"))


def find_oci_registry() -> Path:
    """The OCI registry with the referrers API that ``scripts/k8s-binaries cosign`` builds
    (``scripts/oci-registry``, go-containerregistry at the pinned GGCR_VERSION)."""
    hint = (
        "run `bash scripts/k8s-binaries cosign` from the repository root (builds it with Go "
        "from the module proxy, beside cosign)"
    )
    what = "the OCI registry with the referrers API"
    return _tool("oci-registry", "GGCR_VERSION", what, hint)


def node_root() -> Path:
    """Where ``scripts/k8s-binaries node`` puts the node's binaries (``bin/``) and pause image."""
    return cache_root() / "node" / pinned_versions()["K8S_VERSION"]


def find_node_binaries() -> Path:
    """The directory holding every binary in :data:`NODE_BINARIES` and the pause image.

    ``$AFFIDAVIT_NODE_BIN`` wins when set. Raises :class:`BinariesMissingError` naming what is
    missing and how to build it.
    """
    override = os.environ.get("AFFIDAVIT_NODE_BIN")
    directory = Path(override) if override else node_root() / "bin"
    missing = [name for name in NODE_BINARIES if not os.access(directory / name, os.X_OK)]
    if not (directory.parent / "pause-oci" / "index.json").is_file():
        missing.append("pause image (pause-oci)")
    if missing:
        raise BinariesMissingError(
            f"node binaries missing from {directory}: {', '.join(missing)}",
            hint="run `bash scripts/k8s-binaries node` from the repository root (builds them "
            "with Go from the module proxy), or point AFFIDAVIT_NODE_BIN at a directory that "
            "holds them",
        )
    return directory
