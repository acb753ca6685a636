"""Fixtures for end-to-end tests: one real Kubernetes control plane per test session.

etcd, kube-apiserver and kube-controller-manager are started once (it takes seconds) from the
binaries ``scripts/k8s-binaries`` builds, and torn down at the end of the session even when tests
fail or the run is interrupted. In CI (``CI=true``) missing binaries are a failure, so a broken
build step cannot hide behind skipped tests; locally the tests skip with the command to run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from affidavit.envtest import ControlPlaneInfo
from control_planes import started_control_plane

#: ``kubectl(*args, input=None, check=True, timeout=60)`` -> the completed process (text mode).
Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneInfo]:
    """A running etcd + kube-apiserver + kube-controller-manager, shared by the session."""
    with started_control_plane(tmp_path_factory.mktemp("control-plane")) as info:
        yield info


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlaneInfo) -> Kubectl:
    """Run the cached kubectl against the session's control plane."""

    def run(
        *args: str | Path,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(control_plane.kubectl), f"--kubeconfig={control_plane.kubeconfig}"]
        argv += [str(a) for a in args]
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(map(str, args))} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    return run
