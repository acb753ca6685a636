"""Which operator replica publishes: a ``coordination.k8s.io/v1`` Lease, held by one at a time.

With ``replicaCount > 1`` every Pod runs an operator. All of them keep the webhook certificate
current (that is race-safe, see :mod:`affidavit.operator.certificates`), but exactly one
publishes the policy index, writes the objects' status and turns decisions into Events:
otherwise replicas with a momentarily different view would overwrite each other's index and
every denial would be reported twice. That one is the holder of the Lease
``affidavit-operator`` in the release namespace.

The holder renews the Lease every ``renew_seconds``. A replica that has seen the Lease record
(holder, ``renewTime``, ``resourceVersion``) unchanged for ``lease_seconds`` takes it over
(optimistic concurrency on ``resourceVersion``: two candidates cannot both win), so after the
leader dies another replica publishes within ``lease_seconds + renew_seconds``. "Unchanged for"
is measured on this replica's monotonic clock from when it last saw the record change, never by
comparing ``renewTime`` (the holder's wall clock) with this replica's wall clock: with the clocks
of two nodes apart by more than the lease, that comparison let a replica take over a Lease still
being renewed, and two replicas published at once. So a replica that has just started waits one
lease duration before it takes over a Lease somebody holds (as client-go's leader election does).

A leader that stops cleanly releases the Lease at once. A leader that cannot renew stops
publishing as soon as its own lease could have expired, before anyone else may take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from affidavit.errors import AffidavitError
from affidavit.operator import kube

log = logging.getLogger(__name__)

LEASE_NAME = "affidavit-operator"


def replica_identity() -> str:
    """This replica's name in the Lease: the Pod's name in a cluster (its host name, or
    ``AFFIDAVIT_POD_NAME``), host name and process id elsewhere. Never ``/etc/passwd``."""
    pod = os.environ.get("AFFIDAVIT_POD_NAME", "").strip()
    if pod:
        return pod
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return socket.gethostname()
    return f"{socket.gethostname()}/{os.getpid()}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class LeaderElection:
    """Holds (or waits for) the Lease; :meth:`is_leader` gates every publishing write."""

    api: kube.Kube
    namespace: str
    identity: str
    lease_seconds: int = 15
    renew_seconds: float = 5.0
    name: str = LEASE_NAME
    on_elected: Callable[[], None] = lambda: None
    #: Wall clock: only written into the Lease (``renewTime``, ``acquireTime``) for people to read.
    wall: Callable[[], datetime.datetime] = _now
    #: This replica's monotonic clock: every expiry decision is taken on it.
    monotonic: Callable[[], float] = time.monotonic
    _valid_until: float = field(default=0.0, init=False)
    #: The Lease record last seen (holder, renewTime, resourceVersion) and when it was first seen.
    _observed: tuple[str, str, str] | None = field(default=None, init=False)
    _observed_at: float = field(default=0.0, init=False)

    def is_leader(self) -> bool:
        """True while this replica holds a Lease nobody else may yet have taken over."""
        return self.monotonic() < self._valid_until

    def try_acquire_or_renew(self) -> bool:
        """One round: create, renew or take over the Lease; True if this replica holds it."""
        coordination = client.CoordinationV1Api(self.api.api)
        started = self.monotonic()
        now = self.wall()
        try:
            lease = kube.call(
                f"read lease {self.name}",
                lambda: coordination.read_namespaced_lease(self.name, self.namespace),
            )
        except AffidavitError as e:
            if not kube.is_not_found(e):
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=self._spec(now, transitions=0, acquired=now),
            )
            return self._write(
                started,
                lambda: coordination.create_namespaced_lease(self.namespace, body),
                "create",
            )
        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity or ""
        if holder == self.identity:
            lease.spec = self._spec(now, spec.lease_transitions or 0, spec.acquire_time or now)
            return self._write(started, lambda: self._replace(coordination, lease), "renew")
        self._observe(lease)
        duration = spec.lease_duration_seconds or self.lease_seconds
        # Never ``now - spec.renew_time``: that is the holder's clock against ours.
        expired = not holder or self.monotonic() - self._observed_at > duration
        if not expired:
            self._valid_until = 0.0
            return False
        lease.spec = self._spec(now, (spec.lease_transitions or 0) + 1, now)
        log.info("taking over lease %s from %r", self.name, holder or "nobody")
        return self._write(started, lambda: self._replace(coordination, lease), "take over")

    def release(self) -> None:
        """Give the Lease up at once (a clean stop), so another replica takes over now."""
        if not self.is_leader():
            return
        self._valid_until = 0.0
        coordination = client.CoordinationV1Api(self.api.api)
        with contextlib.suppress(AffidavitError):
            lease = kube.call(
                f"read lease {self.name}",
                lambda: coordination.read_namespaced_lease(self.name, self.namespace),
            )
            if lease.spec and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                lease.spec.renew_time = None
                self._replace(coordination, lease)
                log.info("released lease %s", self.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Acquire or renew every ``renew_seconds`` until ``stop``; release on the way out."""
        try:
            while not stop.is_set():
                was = self.is_leader()
                try:
                    now_leader = await asyncio.to_thread(self.try_acquire_or_renew)
                except (AffidavitError, OSError) as e:
                    log.warning("lease %s: %s", self.name, e)
                    now_leader = self.is_leader()
                if now_leader and not was:
                    log.info("elected: %s holds lease %s", self.identity, self.name)
                    self.on_elected()
                elif was and not now_leader:
                    log.info("no longer the leader (lease %s)", self.name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.renew_seconds)
        finally:
            await asyncio.to_thread(self.release)

    def _spec(self, now: datetime.datetime, transitions: int, acquired: datetime.datetime) -> Any:
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=self.lease_seconds,
            acquire_time=acquired,
            renew_time=now,
            lease_transitions=transitions,
        )

    def _replace(self, coordination: Any, lease: Any) -> Any:
        return kube.call(
            f"update lease {self.name}",
            lambda: coordination.replace_namespaced_lease(self.name, self.namespace, lease),
        )

    def _observe(self, lease: Any) -> None:
        """Note the Lease record; restart the expiry count if it changed since last seen."""
        spec = lease.spec or client.V1LeaseSpec()
        metadata = lease.metadata or client.V1ObjectMeta()
        record = (
            spec.holder_identity or "",
            str(spec.renew_time),
            str(metadata.resource_version),
        )
        if record != self._observed:
            self._observed = record
            self._observed_at = self.monotonic()

    def _write(self, started: float, write: Callable[[], Any], what: str) -> bool:
        try:
            written = kube.call(f"{what} lease {self.name}", write)
        except AffidavitError as e:
            if kube.is_conflict(e):  # another replica wrote first
                self._valid_until = 0.0
                return False
            raise
        self._observe(written)
        # Counted from before the read: never believe in a lease longer than others will.
        self._valid_until = started + self.lease_seconds
        return True
