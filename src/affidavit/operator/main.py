"""The operator's entry point: settings, kopf in standalone mode, and the background loops.

One process runs kopf (watching the CRDs, no kopf peering) beside loops of its own: the
leader election (a Lease: of several replicas, only its holder publishes), the reconciler
(index, status, exception expiry), the certificate manager (Secret, cert dir, ``caBundle``,
rotation; every replica, race-safe), the event reporter (ledger -> Events) and, when the CLI
hands it the webhook's judge, the re-check of running workloads (PolicyReports, a gauge). kopf logs
in with the same kubeconfig (or service account) the loops use, so a local run against a test
control plane and an in-cluster run differ only in ``--kubeconfig``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import signal
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf

from affidavit.errors import UsageError
from affidavit.ledger import Ledger
from affidavit.operator import (
    certificates,
    crd_drift,
    events,
    handlers,
    kube,
    leader,
    readiness,
    recheck,
    supervise,
    webhook_owner,
)
from affidavit.policy.lifetime import DEFAULT_EXCEPTION_MAX_DAYS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorSettings:
    """Everything the operator needs to know about where it runs."""

    namespace: str
    kubeconfig: Path | None = None
    cluster_name: str = ""
    region: str = ""
    ledger_url: str | None = None
    webhook_url: str | None = None  # https://127.0.0.1:PORT/validate for a local webhook
    service_name: str = "affidavit"
    webhook_configuration: str = certificates.WEBHOOK_CONFIGURATION
    cert_dir: Path | None = None
    manage_certificates: bool = True
    cert_lifetime: datetime.timedelta = datetime.timedelta(days=90)
    cert_renew_fraction: float = 1 / 3
    cert_check_interval: float = 60.0
    resync: datetime.timedelta = datetime.timedelta(minutes=5)
    exception_max_days: int = DEFAULT_EXCEPTION_MAX_DAYS
    events_interval: float = 2.0
    liveness_endpoint: str | None = None  # e.g. http://0.0.0.0:8080/healthz (kopf's probe)
    readiness_endpoint: str | None = None  # e.g. http://0.0.0.0:8081/readyz (index current)
    crds_hold_start: bool = True  # older CRDs hold /startz too (not under a Recreate rollout)
    #: The failurePolicy the webhook configurations were installed with (None: not compared).
    webhook_failure_policy: str | None = None
    #: Make Affidavit's namespace own both webhook configurations (``webhook_owner``).
    own_webhook_configurations: bool = False
    #: The operator Lease: a dead leader is replaced within lease + renew seconds.
    lease_seconds: int = 15
    lease_renew_seconds: float = 5.0
    #: Re-check running workloads this often (and on index changes); needs a judge to run.
    recheck_period: datetime.timedelta = datetime.timedelta(minutes=5)
    #: An exception expiring within this is reported as ``warn``.
    recheck_warn_within: datetime.timedelta = datetime.timedelta(days=3)
    #: Namespaces the webhook does not judge, besides ``namespace`` and kube-system.
    recheck_exclude_namespaces: tuple[str, ...] = ()

    def certificate_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """DNS and IP SANs: the Service's names, plus the host of ``webhook_url``."""
        dns = certificates.service_names(self.service_name, self.namespace)
        ips: list[str] = []
        if self.webhook_url:
            parsed = urllib.parse.urlsplit(self.webhook_url)
            if parsed.scheme != "https" or not parsed.hostname:
                raise UsageError(
                    f"--webhook-url {self.webhook_url!r} is not an https:// URL",
                    hint="the kube-apiserver only calls webhooks over https, e.g. "
                    "https://127.0.0.1:8443/validate",
                )
            host = parsed.hostname
            if _is_ip(host):
                ips.append(host)
            elif host not in dns:
                dns.append(host)
        return tuple(dns), tuple(ips)


def operator_identity() -> str:
    """Who this operator replica is, for kopf's peering, without asking ``/etc/passwd``.

    kopf's default (``getpass.getuser()@host``) raises ``KeyError`` for a uid with no passwd
    entry, which is how images run (``runAsUser: 65532``): the operator crash-looped. The same
    name identifies the replica in the operator Lease (``leader.replica_identity``).
    """
    return leader.replica_identity()


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _cert_loop(
    manager: certificates.CertificateManager, interval: float, stop: asyncio.Event
) -> None:
    """Keep the certificate current: check again at its renewal time, at least every interval."""

    async def step() -> float:
        material = await asyncio.to_thread(manager.ensure)
        until = certificates.renew_at(material, manager.policy)
        now = datetime.datetime.now(datetime.UTC)
        return max(0.5, (until - now).total_seconds() + 0.1)

    await supervise.supervise(
        "certificate manager",
        step,
        stop,
        interval=interval,
        backoff=supervise.Backoff.constant(min(interval, 5.0)),
    )


async def _own_loop(
    client: kube.Kube, settings: OperatorSettings, drift: webhook_owner.Drift, stop: asyncio.Event
) -> None:
    """Keep this release's webhook configurations owned by its namespace, and compare their
    failurePolicy with the installed one (``webhook_owner``): at start, then every resync
    period (a re-installed configuration is owned again)."""

    def check() -> None:
        if settings.own_webhook_configurations:
            webhook_owner.own(client, settings.webhook_configuration, settings.namespace)
        if settings.webhook_failure_policy is not None:
            drift.update(
                webhook_owner.failure_policy_drift(
                    client, settings.webhook_configuration, settings.webhook_failure_policy
                )
            )

    async def step() -> float:
        await asyncio.to_thread(check)
        return settings.resync.total_seconds()

    await supervise.supervise(
        "webhook configurations' owner",
        step,
        stop,
        interval=settings.resync.total_seconds(),
        backoff=supervise.Backoff.constant(min(settings.resync.total_seconds(), 30.0)),
    )


def _both(reconciler: handlers.Reconciler, rechecker: recheck.Rechecker) -> Callable[[], None]:
    """On election: reconcile and re-check at once."""

    def elected() -> None:
        reconciler.mark_dirty()
        rechecker.mark_dirty()

    return elected


def build_registry(
    reconciler: handlers.Reconciler, settings: OperatorSettings, stop: asyncio.Event
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def _configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True
        # Resources are discovered once at start; watching CRDs would need RBAC on
        # customresourcedefinitions, which the chart does not grant.
        settings.scanning.disabled = True
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.networking.request_timeout = 60

    @kopf.on.login(registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo | None:
        return kube.kopf_login(kubeconfig)

    @kopf.on.cleanup(registry=registry)
    def _stop_ours(**_: Any) -> None:
        # kopf takes SIGTERM's handler from ours, then waits up to 5 s for every other task in
        # the loop before cancelling it; setting ``stop`` here lets our loops (and the lease
        # release) finish at once instead of being cancelled after that wait.
        stop.set()

    kubeconfig = settings.kubeconfig
    handlers.register(registry, reconciler)
    return registry


async def run_async(
    settings: OperatorSettings,
    stop: asyncio.Event | None = None,
    judge: recheck.WorkloadJudge | None = None,
) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM when run from the main thread).

    With ``judge`` (the webhook's engine, built by the CLI) running workloads are re-checked
    and reported (``affidavit.operator.recheck``)."""
    stop = stop or asyncio.Event()
    client = kube.connect(settings.kubeconfig)
    ready = readiness.Readiness(
        max_age=2 * settings.resync + datetime.timedelta(seconds=60),
        crds_hold_start=settings.crds_hold_start,
    )
    reconciler = handlers.Reconciler(
        client,
        settings.namespace,
        settings.cluster_name,
        settings.region,
        settings.resync,
        exception_max_days=settings.exception_max_days,
        readiness=ready,
        crds_check=lambda: crd_drift.check(client),
    )
    loops = [asyncio.create_task(reconciler.run(stop), name="affidavit-reconciler")]
    rechecker = None
    if judge is not None:
        rechecker = recheck.Rechecker(
            client,
            judge,
            lambda: reconciler.snapshot.index,
            period=settings.recheck_period,
            warn_within=settings.recheck_warn_within,
            exclude_namespaces=frozenset(
                (settings.namespace, "kube-system", *settings.recheck_exclude_namespaces)
            ),
        )
        reconciler.on_index = rechecker.index_changed
        loops.append(asyncio.create_task(rechecker.run(stop), name="affidavit-recheck"))
    drift = webhook_owner.Drift()
    renderers = [drift.render] + ([rechecker.render] if rechecker is not None else [])
    if settings.readiness_endpoint:

        def metrics() -> bytes:
            return b"".join(render() for render in renderers)

        loops.append(
            asyncio.create_task(
                readiness.serve(ready, settings.readiness_endpoint, stop, metrics),
                name="affidavit-readyz",
            )
        )
    election = leader.LeaderElection(
        client,
        settings.namespace,
        leader.replica_identity(),
        lease_seconds=settings.lease_seconds,
        renew_seconds=settings.lease_renew_seconds,
        on_elected=reconciler.mark_dirty if rechecker is None else _both(reconciler, rechecker),
    )
    reconciler.is_leader = election.is_leader
    if rechecker is not None:
        rechecker.is_leader = election.is_leader
    loops.append(asyncio.create_task(election.run(stop), name="affidavit-leader"))
    loops.append(
        asyncio.create_task(_own_loop(client, settings, drift, stop), name="affidavit-owner")
    )
    if settings.manage_certificates:
        dns, ips = settings.certificate_names()
        manager = certificates.CertificateManager(
            api=client,
            namespace=settings.namespace,
            dns_names=dns,
            ips=ips,
            policy=certificates.CertificatePolicy(
                settings.cert_lifetime, settings.cert_renew_fraction
            ),
            cert_dir=settings.cert_dir,
            webhook_configuration=settings.webhook_configuration,
        )
        loops.append(
            asyncio.create_task(
                _cert_loop(manager, settings.cert_check_interval, stop), name="affidavit-certs"
            )
        )
    if settings.ledger_url:
        reporter = events.EventReporter(
            client,
            Ledger(settings.ledger_url),
            settings.namespace,
            settings.cluster_name,
            interval=settings.events_interval,
            is_leader=election.is_leader,
        )
        renderers.append(reporter.render)  # read at each scrape: the list, not a copy
        loops.append(asyncio.create_task(reporter.run(stop), name="affidavit-events"))
    registry = build_registry(reconciler, settings, stop)
    kopf_stop: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def relay_stop() -> None:
        await stop.wait()
        if not kopf_stop.done():
            kopf_stop.set_result(None)

    loops.append(asyncio.create_task(relay_stop()))
    try:
        await kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=True,
            # kopf's Identity is a NewType of str that kopf does not export.
            identity=operator_identity(),  # type: ignore[arg-type]
            stop_flag=kopf_stop,
            liveness_endpoint=settings.liveness_endpoint,
        )
    finally:
        stop.set()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        client.close()


def run(settings: OperatorSettings, judge: recheck.WorkloadJudge | None = None) -> None:
    """Blocking entry point for ``affidavit operator run``: stops cleanly on SIGTERM/SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await run_async(settings, stop, judge)

    asyncio.run(main())
