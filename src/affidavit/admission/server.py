"""Wiring: settings → collaborators → ASGI app → uvicorn over TLS.

The one place that decides where policies come from (files or the operator's ConfigMap), which
ledger is used, and how the Kubernetes API is reached, so everything below works on plain values
and protocols. ``serve`` runs uvicorn with a TLS context that follows certificate rotation, on
uvloop with the httptools parser: measured against asyncio's loop and h11 in
``benchmarks/bench_webhook.py``, where the one event loop is what a busy webhook saturates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from affidavit import defaults
from affidavit.admission.acting import Acting
from affidavit.admission.app import create_app
from affidavit.admission.client_auth import ASGIApp, ClientAuth, PeerCertProtocol
from affidavit.admission.decide import Judge, Webhook
from affidavit.admission.decisions_api import reading_ledger
from affidavit.admission.judged import JudgedDigests
from affidavit.admission.metrics import Metrics
from affidavit.admission.owners import OwnerChain
from affidavit.admission.policy_source import (
    ConfigMapPolicySource,
    FilePolicySource,
    NamespaceLabels,
    PolicySource,
)
from affidavit.admission.resolve import EvidenceResolver
from affidavit.admission.tls import ReloadingTLS
from affidavit.admission.trust_roots import TrustRoots
from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.attestations.registry import ca_context
from affidavit.errors import UsageError
from affidavit.ledger import BufferedLedger, Ledger
from affidavit.ledger.checkpoint import Checkpointer, CheckpointTrail, load_private_key
from affidavit.names import INDEX_CONFIGMAP
from affidavit.policy.lifetime import DEFAULT_EXCEPTION_MAX_DAYS
from affidavit.policy.presets import UnmatchedImages

log = logging.getLogger("affidavit.admission")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: The first bytes of every SQLite database file.
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class WebhookSettings:
    """Everything ``affidavit webhook serve`` is configured with (CLI flags or AFFIDAVIT_* env)."""

    tls_cert: Path
    tls_key: Path
    cluster_name: str
    region: str
    port: int = 8443
    host: str = "0.0.0.0"  # noqa: S104 - a webhook must be reachable by the apiserver
    ledger_url: str | None = defaults.LEDGER_URL
    policy_dir: Path | None = None
    policy_configmap: str | None = None  # "NAMESPACE/NAME"
    kubeconfig: Path | None = None
    budget_seconds: float = defaults.BUDGET_SECONDS
    max_body_bytes: int = defaults.MAX_BODY_BYTES
    insecure_registries: tuple[str, ...] = ()
    registry_ca: Path | None = None
    # Registries contacted besides those a policy's match.images names; also the only hosts a
    # redirect (blob storage) or a token realm may lead to.
    registry_allowed_hosts: tuple[str, ...] = ()
    # A registry that does not answer within this is unavailable (fail-open where a policy says
    # Ignore); below the budget, so that an outage is told apart from a request out of time.
    registry_timeout_seconds: float | None = None  # default: 0.6 x budget
    # How long a review waits for the API server to show a child's owner (a Pod's ReplicaSet, a
    # ReplicaSet's Deployment) before the child is judged on its own; also half the remaining
    # budget at most. A loaded API server that answers slower turns a scale after a policy
    # tightened into denials: raise it there.
    owner_check_seconds: float = defaults.OWNER_CHECK_SECONDS
    max_images_per_request: int = defaults.MAX_IMAGES_PER_REQUEST
    cache_entries: int = 4096
    # Predicate JSON the evidence cache holds at most (resident: several times this; the chart
    # derives it from the memory limit, see values.yaml webhook.evidenceCacheMiB).
    cache_bytes: int = defaults.EVIDENCE_CACHE_BYTES
    negative_ttl_seconds: float = 30.0
    evidence_ttl_seconds: float = 300.0  # verified evidence is re-verified after this
    exception_max_days: int = DEFAULT_EXCEPTION_MAX_DAYS  # with --policy-dir
    ledger_buffer: int = 10_000
    # Where buffered decisions survive a restart (append-only, fsynced); default: beside a
    # SQLite ledger, none (memory only) for PostgreSQL unless given.
    ledger_buffer_file: Path | None = None
    # How long an append waits for another writer's lock before the decision is buffered;
    # default min(1 s, budget / 8), inside the apiserver's timeout beyond the budget.
    ledger_wait_seconds: float | None = None
    # Signed checkpoints of the ledger head (Ed25519 key; trail directory outside the database).
    ledger_key: Path | None = None
    checkpoint_dir: Path | None = None
    checkpoint_every: int = 1000
    checkpoint_interval_seconds: float = 60.0
    checkpoint_configmap: str | None = None  # "NAMESPACE/NAME": the newest checkpoints, too
    log_level: str = "info"
    client_ca: Path | None = None  # verify the kube-apiserver's client certificate against it
    client_names: tuple[str, ...] = ()  # its subject CN or DNS SAN, one of these
    unmatched_images: UnmatchedImages = "Warn"
    tls_wait_seconds: float = 0.0  # wait this long for the operator to write the certificate
    metrics_port: int | None = None  # also serve /metrics over plain HTTP here (Prometheus)
    decisions_api: bool = False  # serve the ledger read-only at /decisions (service proxy)

    def __post_init__(self) -> None:
        if (self.policy_dir is None) == (self.policy_configmap is None):
            raise UsageError(
                "give exactly one policy source",
                hint="--policy-dir DIR (local files) or --policy-configmap NAMESPACE/NAME",
            )
        if self.policy_configmap is not None and self.policy_configmap.count("/") != 1:
            raise UsageError(
                f"--policy-configmap {self.policy_configmap!r} is not NAMESPACE/NAME",
                hint=f"e.g. --policy-configmap affidavit-system/{INDEX_CONFIGMAP}",
            )
        if self.client_names and self.client_ca is None:
            raise UsageError(
                "--client-name needs --client-ca (the CA that signs that client certificate)",
                hint="pass --client-ca with the PEM CA bundle, or drop --client-name",
            )
        if not 0 < self.evidence_ttl_seconds <= 86400:
            raise UsageError(
                f"--evidence-ttl-seconds {self.evidence_ttl_seconds:g} is outside (0, 86400]",
                hint="verified evidence is re-verified after this; the default is 300",
            )
        if self.exception_max_days < 1:
            raise UsageError(
                f"--exception-max-days must be at least 1; found {self.exception_max_days}",
                hint="break-glass exceptions are bounded; the default is 7 days",
            )
        if self.unmatched_images not in ("Allow", "Warn", "Deny"):
            raise UsageError(
                f"--unmatched-images {self.unmatched_images!r} is not Allow, Warn or Deny",
                hint="what an image no AccountabilityPolicy matches gets (default Warn)",
            )
        if not 0 < self.budget_seconds < 30:
            raise UsageError(
                f"--budget-seconds {self.budget_seconds:g} is outside (0, 30)",
                hint="keep it below the webhook's timeoutSeconds (default budget 8 of 10)",
            )
        timeout = self.registry_timeout_seconds
        if timeout is not None and not 0 < timeout < self.budget_seconds:
            raise UsageError(
                f"--registry-timeout {timeout:g} is outside (0, --budget-seconds "
                f"{self.budget_seconds:g})",
                hint="a registry is unavailable when it does not answer within this time; the "
                "budget must leave room for it",
            )
        if not self.owner_check_seconds > 0:
            raise UsageError(
                f"--owner-check-seconds {self.owner_check_seconds:g} must be more than 0",
                hint="a review waits this long for the API server to show a child's owner (never "
                "more than half of what is left of --budget-seconds); the default is "
                f"{defaults.OWNER_CHECK_SECONDS:g}",
            )
        wait = self.ledger_wait_seconds
        if wait is not None and not 0 < wait < self.budget_seconds:
            raise UsageError(
                f"--ledger-wait {wait:g} is outside (0, --budget-seconds {self.budget_seconds:g})",
                hint="the ledger's lock wait must stay well inside the request budget",
            )
        if self.max_images_per_request < 1:
            raise UsageError(
                f"--max-images-per-request {self.max_images_per_request} must be at least 1"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise UsageError(
                f"--log-level {self.log_level!r} is not a log level",
                hint="use one of " + ", ".join(name.lower() for name in LOG_LEVELS),
            )
        for flag, port in (("--port", self.port), ("--metrics-port", self.metrics_port)):
            if port is not None and not 0 < port < 65536:
                raise UsageError(f"{flag} {port} is not a TCP port (1-65535)")
        self._check_ledger_options()

    def _check_ledger_options(self) -> None:
        """What is never a passing outage is refused at start: it would otherwise be logged
        once a decision, or a checkpoint, for as long as the webhook runs."""
        signing = self.ledger_key or self.checkpoint_dir or self.checkpoint_configmap
        if not self.ledger_url and signing:
            raise UsageError(
                "--ledger-key, --checkpoint-dir and --checkpoint-configmap sign the ledger's "
                "head, and --ledger is off",
                hint="give --ledger URL, or drop the checkpoint options",
            )
        where = self.checkpoint_dir
        if where is not None and where.exists() and not where.is_dir():
            raise UsageError(
                f"--checkpoint-dir {where} is a file, not a directory",
                hint="name a directory (it is made if missing) outside the database",
            )
        if not self.ledger_url:
            return
        try:
            url = make_url(self.ledger_url)
        except (ArgumentError, ValueError) as e:
            raise UsageError(
                f"--ledger {self.ledger_url!r} is not a database URL: {e}",
                hint="sqlite:////PATH/ledger.db or postgresql+psycopg://USER@HOST:PORT/DB",
            ) from e
        if url.get_backend_name() != "sqlite" or not url.database:
            return
        path = Path(url.database)
        if path.is_dir():
            raise UsageError(
                f"--ledger {self.ledger_url}: {path} is a directory, not a SQLite database file",
                hint="name a file, e.g. sqlite:////var/lib/affidavit/ledger.db",
            )
        if path.is_file() and path.stat().st_size:
            with path.open("rb") as f:
                head = f.read(len(SQLITE_MAGIC))
            if head != SQLITE_MAGIC:
                raise UsageError(
                    f"--ledger {self.ledger_url}: {path} is not a SQLite database",
                    hint="name the ledger's own file, or a new path (a ledger is created there)",
                )

    @property
    def ledger_wait(self) -> float:
        if self.ledger_wait_seconds is not None:
            return self.ledger_wait_seconds
        return round(min(1.0, self.budget_seconds / 8), 3)

    @property
    def ledger_buffer_path(self) -> Path | None:
        if self.ledger_buffer_file is not None or not self.ledger_url:
            return self.ledger_buffer_file
        url = make_url(self.ledger_url)
        if url.get_backend_name() == "sqlite" and url.database:
            return Path(url.database + "-buffer.jsonl")
        return None

    @property
    def registry_timeout(self) -> float:
        if self.registry_timeout_seconds is not None:
            return self.registry_timeout_seconds
        return round(self.budget_seconds * 0.6, 3)


def build_webhook(settings: WebhookSettings) -> Webhook:
    """The Webhook and its collaborators for these settings (no server started)."""
    policy: PolicySource
    trust_roots = None
    secrets = None
    owners = None
    acting = None
    namespaces = NamespaceLabels()
    ledger = None
    if settings.ledger_url:
        wait = settings.ledger_wait
        path = settings.ledger_buffer_path
        if path is None:
            log.warning("no --ledger-buffer-file: decisions buffered in an outage live in memory")
        signer = checkpointer(settings)
        store = Ledger(
            settings.ledger_url, connect_timeout=wait, lock_timeout=wait, checkpointer=signer
        )
        if signer is not None:
            signer.start(store.head)  # every T seconds, besides every N decisions
        ledger = BufferedLedger(store, capacity=settings.ledger_buffer, path=path)
    if settings.policy_configmap is not None or settings.kubeconfig is not None:
        from affidavit.admission.kube import KubeApi, api_client

        kube = KubeApi(api_client(settings.kubeconfig), owner_timeout=settings.owner_check_seconds)
        secrets = kube
        namespaces = NamespaceLabels(kube)
        # A pinned Pod matches its template's tag only at a digest the ledger shows admitted.
        judged = JudgedDigests(ledger.ledger) if ledger is not None else None
        owners = OwnerChain(kube, judged=judged, check_seconds=settings.owner_check_seconds)
        acting = Acting(kube)  # separateRequester: who may act as the deployer
    if settings.policy_dir is not None:
        policy = FilePolicySource(
            settings.policy_dir, exception_max_days=settings.exception_max_days
        )
    else:
        assert settings.policy_configmap is not None
        namespace, name = settings.policy_configmap.split("/")
        policy = ConfigMapPolicySource(kube, namespace, name)
        # Keyless signers' private trusted roots: ConfigMaps of this (Affidavit's) namespace.
        trust_roots = TrustRoots(kube, namespace)
    resolver = EvidenceResolver(
        cache=EvidenceCache(
            max_entries=settings.cache_entries,
            max_bytes=settings.cache_bytes,
            negative_ttl=settings.negative_ttl_seconds,
            positive_ttl=settings.evidence_ttl_seconds,
        ),
        secrets=secrets,
        insecure_hosts=settings.insecure_registries,
        ca_bundle=settings.registry_ca,
        registry_timeout=settings.registry_timeout,
        allowed_hosts=settings.registry_allowed_hosts,
        trust_roots=trust_roots,
    )
    return Webhook(
        judge=Judge(
            cluster=settings.cluster_name,
            region=settings.region,
            budget_seconds=settings.budget_seconds,
            max_body_bytes=settings.max_body_bytes,
            max_images=settings.max_images_per_request,
            unmatched_images=settings.unmatched_images,
        ),
        policy=policy,
        resolver=resolver,
        namespaces=namespaces,
        ledger=ledger,
        metrics=Metrics(),
        owners=owners,
        acting=acting,
    )


def checkpointer(settings: WebhookSettings) -> Checkpointer | None:
    """The signer of ledger checkpoints, or None when no ledger key is configured."""
    if settings.ledger_key is None and settings.checkpoint_dir is None:
        return None
    if settings.ledger_key is None or settings.checkpoint_dir is None:
        raise UsageError(
            "--ledger-key and --checkpoint-dir go together",
            hint="make a key with `affidavit keygen --ledger-key` and name the directory "
            "the signed checkpoints are published to",
        )
    mirrors = []
    if settings.checkpoint_configmap is not None:
        from affidavit.admission.checkpoint_trail import ConfigMapTrail
        from affidavit.admission.kube import api_client

        namespace, _, name = settings.checkpoint_configmap.partition("/")
        if not namespace or not name:
            raise UsageError(
                f"--checkpoint-configmap {settings.checkpoint_configmap!r} is not NAMESPACE/NAME"
            )
        mirrors.append(ConfigMapTrail(api_client(settings.kubeconfig), namespace, name))
    return Checkpointer(
        load_private_key(settings.ledger_key),
        CheckpointTrail(settings.checkpoint_dir),
        origin=f"affidavit.dev/ledger/{settings.cluster_name}",
        every=settings.checkpoint_every,
        interval=settings.checkpoint_interval_seconds,
        mirrors=mirrors,
    )


def client_auth(settings: WebhookSettings) -> ClientAuth | None:
    """Who may call the webhook, or None when client certificates are not checked."""
    if settings.client_ca is None:
        return None
    return ClientAuth(settings.client_ca, frozenset(settings.client_names))


def build_app(settings: WebhookSettings) -> ASGIApp:
    return create_app(
        build_webhook(settings),
        client_auth=client_auth(settings),
        decisions_api=settings.decisions_api,
        decisions_ledger=decisions_ledger(settings),
    )


def decisions_ledger(settings: WebhookSettings) -> Callable[[], Ledger | None]:
    """The decisions API's own read-only connection to the ledger (none without a ledger)."""
    if not settings.ledger_url:
        return lambda: None
    return reading_ledger(settings.ledger_url)


def serve_metrics(webhook: Webhook, host: str, port: int) -> None:
    """Serve the webhook's metrics over plain HTTP on a port of their own (a daemon thread).

    Prometheus scrapes without the webhook's CA, and a NetworkPolicy can open this port to the
    monitoring namespace without opening the admission endpoint.
    """
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host, registry=webhook.metrics.registry)
    except OSError as e:
        raise UsageError(
            f"cannot serve metrics on {host}:{port}: {e.strerror or e}",
            hint="choose a free --metrics-port (or omit it: /metrics is also on the TLS port)",
        ) from e


def serve(settings: WebhookSettings) -> None:
    """Run the webhook over TLS until interrupted."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    auth = client_auth(settings)  # checked before anything loads
    if settings.registry_ca is not None:  # a bad bundle stops the start, not every lookup
        ca_context(settings.registry_ca)
    tls = ReloadingTLS(
        settings.tls_cert,
        settings.tls_key,
        client_ca=settings.client_ca,
        wait=settings.tls_wait_seconds,
    )
    webhook = build_webhook(settings)
    webhook.metrics.serving_certificate(tls.validity)
    if settings.metrics_port is not None:
        serve_metrics(webhook, settings.host, settings.metrics_port)
    app = create_app(
        webhook,
        client_auth=auth,
        decisions_api=settings.decisions_api,
        decisions_ledger=decisions_ledger(settings),
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert),
        ssl_keyfile=str(settings.tls_key),
        ssl_context_factory=lambda _config, _default: tls.context,
        http=PeerCertProtocol,  # puts the verified client certificate in each request's scope
        loop="uvloop",
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=False,  # nothing fronts the webhook: no X-Forwarded-For is believed
        server_header=False,
    )
    uvicorn.Server(config).run()
