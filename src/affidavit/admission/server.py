"""Wiring: settings → collaborators → FastAPI app → uvicorn over TLS.

The one place that decides where policies come from (files or the operator's ConfigMap), which
ledger is used, and how the Kubernetes API is reached, so everything below works on plain values
and protocols. ``serve`` runs uvicorn with a TLS context that follows certificate rotation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from affidavit.admission.app import create_app
from affidavit.admission.decide import Judge, Webhook
from affidavit.admission.metrics import Metrics
from affidavit.admission.policy_source import (
    ConfigMapPolicySource,
    FilePolicySource,
    NamespaceLabels,
    PolicySource,
)
from affidavit.admission.resolve import EvidenceResolver
from affidavit.admission.tls import ReloadingTLS
from affidavit.attestations.verify import EvidenceCache
from affidavit.errors import UsageError
from affidavit.ledger import BufferedLedger, Ledger

DEFAULT_LEDGER = "sqlite:///affidavit-ledger.db"


@dataclass(frozen=True)
class WebhookSettings:
    """Everything ``affidavit webhook serve`` is configured with (CLI flags or AFFIDAVIT_* env)."""

    tls_cert: Path
    tls_key: Path
    cluster_name: str
    region: str
    port: int = 8443
    host: str = "0.0.0.0"  # noqa: S104 - a webhook must be reachable by the apiserver
    ledger_url: str | None = DEFAULT_LEDGER
    policy_dir: Path | None = None
    policy_configmap: str | None = None  # "NAMESPACE/NAME"
    kubeconfig: Path | None = None
    budget_seconds: float = 8.0
    max_body_bytes: int = 3 * 1024 * 1024
    insecure_registries: tuple[str, ...] = ()
    registry_ca: Path | None = None
    # Registries contacted besides those a policy's match.images names; also the only hosts a
    # redirect (blob storage) or a token realm may lead to.
    registry_allowed_hosts: tuple[str, ...] = ()
    # A registry that does not answer within this is unavailable (fail-open where a policy says
    # Ignore); below the budget, so that an outage is told apart from a request out of time.
    registry_timeout_seconds: float | None = None  # default: 0.6 x budget
    max_images_per_request: int = 64
    cache_entries: int = 4096
    negative_ttl_seconds: float = 30.0
    ledger_buffer: int = 10_000
    log_level: str = "info"

    def __post_init__(self) -> None:
        if (self.policy_dir is None) == (self.policy_configmap is None):
            raise UsageError(
                "give exactly one policy source",
                hint="--policy-dir DIR (local files) or --policy-configmap NAMESPACE/NAME",
            )
        if self.policy_configmap is not None and self.policy_configmap.count("/") != 1:
            raise UsageError(
                f"--policy-configmap {self.policy_configmap!r} is not NAMESPACE/NAME",
                hint="e.g. --policy-configmap affidavit-system/affidavit-policy-index",
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
        if self.max_images_per_request < 1:
            raise UsageError(
                f"--max-images-per-request {self.max_images_per_request} must be at least 1"
            )

    @property
    def registry_timeout(self) -> float:
        if self.registry_timeout_seconds is not None:
            return self.registry_timeout_seconds
        return round(self.budget_seconds * 0.6, 3)


def build_webhook(settings: WebhookSettings) -> Webhook:
    """The Webhook and its collaborators for these settings (no server started)."""
    policy: PolicySource
    secrets = None
    namespaces = NamespaceLabels()
    if settings.policy_configmap is not None or settings.kubeconfig is not None:
        from affidavit.admission.kube import KubeApi, api_client

        kube = KubeApi(api_client(settings.kubeconfig))
        secrets = kube
        namespaces = NamespaceLabels(kube)
    if settings.policy_dir is not None:
        policy = FilePolicySource(settings.policy_dir)
    else:
        assert settings.policy_configmap is not None
        namespace, name = settings.policy_configmap.split("/")
        policy = ConfigMapPolicySource(kube, namespace, name)
    resolver = EvidenceResolver(
        cache=EvidenceCache(
            max_entries=settings.cache_entries, negative_ttl=settings.negative_ttl_seconds
        ),
        secrets=secrets,
        insecure_hosts=settings.insecure_registries,
        ca_bundle=settings.registry_ca,
        registry_timeout=settings.registry_timeout,
        allowed_hosts=settings.registry_allowed_hosts,
    )
    ledger = None
    if settings.ledger_url:
        ledger = BufferedLedger(Ledger(settings.ledger_url), capacity=settings.ledger_buffer)
    return Webhook(
        judge=Judge(
            cluster=settings.cluster_name,
            region=settings.region,
            budget_seconds=settings.budget_seconds,
            max_body_bytes=settings.max_body_bytes,
            max_images=settings.max_images_per_request,
        ),
        policy=policy,
        resolver=resolver,
        namespaces=namespaces,
        ledger=ledger,
        metrics=Metrics(),
    )


def build_app(settings: WebhookSettings) -> FastAPI:
    return create_app(build_webhook(settings))


def serve(settings: WebhookSettings) -> None:
    """Run the webhook over TLS until interrupted."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    tls = ReloadingTLS(settings.tls_cert, settings.tls_key)
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert),
        ssl_keyfile=str(settings.tls_key),
        ssl_context_factory=lambda _config, _default: tls.context,
        log_level=settings.log_level,
        access_log=False,
    )
    uvicorn.Server(config).run()
