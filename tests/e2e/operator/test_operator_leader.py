"""Of several operator replicas exactly one holds the Lease and publishes; another takes over
when it dies (after the lease runs out) or at once when it stops cleanly. Real kube-apiserver,
short leases so the test is quick."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from affidavit.envtest import ControlPlaneInfo
from affidavit.operator import kube
from affidavit.operator.leader import LEASE_NAME, LeaderElection

NS = "operator-leader-e2e"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def api(control_plane: ControlPlaneInfo, kubectl: Kubectl) -> Iterator[kube.Kube]:
    kubectl("create", "namespace", NS)
    client = kube.connect(control_plane.kubeconfig)
    try:
        yield client
    finally:
        client.close()
        kubectl("delete", "namespace", NS, "--wait=false")


def replicas(api: kube.Kube, n: int, name: str, lease: int = 30) -> list[LeaderElection]:
    """Replicas with ``lease``-second leases: long where the test does not wait for one to run
    out, so that a loaded machine's slow API calls cannot let a lease lapse mid-test."""
    return [
        LeaderElection(api, NS, f"replica-{i}", lease_seconds=lease, renew_seconds=0.5, name=name)
        for i in range(n)
    ]


def holder(kubectl: Kubectl, name: str) -> str:
    return str(kubectl("get", "lease", name, "-n", NS, "-o",
                       "jsonpath={.spec.holderIdentity}").stdout)  # fmt: skip


def test_exactly_one_of_racing_replicas_wins(api: kube.Kube, kubectl: Kubectl) -> None:
    rs = replicas(api, 4, "race")
    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(lambda r: r.try_acquire_or_renew(), rs))
    assert won.count(True) == 1
    assert [r.is_leader() for r in rs] == won
    assert holder(kubectl, "race") == rs[won.index(True)].identity
    # The others keep losing while the leader renews.
    for _ in range(3):
        assert rs[won.index(True)].try_acquire_or_renew()
        assert not any(r.try_acquire_or_renew() for r in rs if not r.is_leader())


def test_a_dead_leader_is_replaced_after_the_lease_runs_out(
    api: kube.Kube, kubectl: Kubectl
) -> None:
    first, second = replicas(api, 2, "dead", lease=3)
    assert first.try_acquire_or_renew()
    assert not second.try_acquire_or_renew()
    # `first` dies: it renews no more. Within the lease it still believes it leads, then not.
    died = time.monotonic()
    while not second.try_acquire_or_renew():
        assert time.monotonic() - died < 60
        time.sleep(0.2)
    # not before the lease ran out: by then `first` has stopped believing it leads
    assert time.monotonic() >= first._valid_until
    assert not first.is_leader()
    assert second.try_acquire_or_renew()  # renewed, so the lease is fresh for the next line
    assert not first.try_acquire_or_renew()
    assert holder(kubectl, "dead") == "replica-1"


def test_a_leader_that_stops_cleanly_hands_over_at_once(api: kube.Kube, kubectl: Kubectl) -> None:
    first, second = replicas(api, 2, LEASE_NAME)
    assert first.try_acquire_or_renew()
    first.release()
    assert not first.is_leader()
    assert second.try_acquire_or_renew()
    assert holder(kubectl, LEASE_NAME) == "replica-1"
