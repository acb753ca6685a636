"""Starting a real control plane for a test scope: one place that fails in CI and skips elsewhere.

The e2e session shares one control plane; a few integration and unit modules start their own,
without kube-controller-manager, because they read back *every* object of a kind and must not
see other tests' objects. All of them go through ``started_control_plane``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from affidavit.envtest import BinariesMissingError, ControlPlane, ControlPlaneInfo, find_binaries


def _require_binaries() -> None:
    try:
        find_binaries()
    except BinariesMissingError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(str(e))
        pytest.skip(str(e))


@contextmanager
def started_control_plane(
    workdir: Path,
    *,
    with_controller_manager: bool = True,
    webhook_client_hosts: Sequence[str] = (),
) -> Iterator[ControlPlaneInfo]:
    """A running control plane; in CI (``CI=true``) missing binaries fail the test, else skip.

    ``webhook_client_hosts``: the apiserver presents a client certificate to webhooks there.
    """
    _require_binaries()
    with ControlPlane(
        workdir,
        with_controller_manager=with_controller_manager,
        webhook_client_hosts=webhook_client_hosts,
    ) as info:
        yield info


@contextmanager
def restartable_control_plane(workdir: Path) -> Iterator[ControlPlane]:
    """A control plane of the test's own (no controller manager) whose components it restarts
    (``ControlPlane.restart``); the session's shared one is never restarted."""
    _require_binaries()
    plane = ControlPlane(workdir, with_controller_manager=False)
    with plane:
        yield plane
