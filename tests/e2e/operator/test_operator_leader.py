"""Of several operator replicas exactly one holds the Lease and publishes; another takes over
when it dies (after the lease runs out) or at once when it stops cleanly, and not while it is
renewed even when the replicas' wall clocks disagree by more than the lease. Real kube-apiserver,
short leases so the test is quick."""

from __future__ import annotations

import datetime
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


class SteppedClock:
    """A monotonic clock the test moves by hand, so lease expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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


def test_a_replica_whose_clock_runs_ahead_does_not_take_a_renewed_lease(
    api: kube.Kube, kubectl: Kubectl
) -> None:
    first, second = replicas(api, 2, "skew")
    # `second`'s node's wall clock is a minute ahead: more than the 30 s lease.
    second.wall = lambda: datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    second.monotonic = clock = SteppedClock()
    assert first.try_acquire_or_renew()
    for _ in range(5):  # 100 s in all on `second`'s clock, but `first` renews every 20 s
        assert not second.try_acquire_or_renew()
        clock.now += 20
        assert first.try_acquire_or_renew()
    assert not second.try_acquire_or_renew()
    assert holder(kubectl, "skew") == "replica-0"
    # `first` dies: `second` takes over once a whole lease passes with the record unchanged.
    clock.now += 29
    assert not second.try_acquire_or_renew()
    clock.now += 2
    assert second.try_acquire_or_renew()
    assert second.is_leader()
    assert holder(kubectl, "skew") == "replica-1"
