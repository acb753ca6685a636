"""Affidavit's cluster side running for real against a control plane: operator, webhook, wiring.

The demo and the end-to-end tests need the same thing a Helm install gives a real cluster (the
CRDs, the operator publishing the policy index and managing the webhook certificate, the webhook
serving decisions, the validating and mutating webhook configurations pointing at it, with the
rules of ``affidavit.admission.kinds``) but with the two servers as local processes, because the
control plane here has no kubelet to run pods. This module is that wiring, in one place, so the
tests exercise exactly what the demo shows.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affidavit import defaults
from affidavit.admission.kinds import pin_rules, stamp_rules, webhook_rules
from affidavit.demo.services import ManagedProcess
from affidavit.envtest import ControlPlaneInfo, free_port
from affidavit.errors import ClusterError
from affidavit.names import INDEX_CONFIGMAP
from affidavit.policy.crds import render_all

NAMESPACE = "affidavit-system"
WEBHOOK_CONFIGURATION = "affidavit"


def webhook_configurations(
    name: str, namespace: str, validate_url: str, mutate_url: str
) -> list[dict[str, Any]]:
    """The chart's Validating- and MutatingWebhookConfiguration, calling a local webhook by URL
    (rules from ``affidavit.admission.kinds``; ``namespace``, the operator's, is not judged)."""

    def hook(webhook: str, url: str) -> dict[str, Any]:
        return {
            "name": webhook,
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 10,
            "matchPolicy": "Equivalent",
            "clientConfig": {"url": url},
            "namespaceSelector": {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "NotIn",
                        "values": [namespace, "kube-system", "kube-public"],
                    }
                ]
            },
        }

    api = "admissionregistration.k8s.io/v1"
    validating = {
        **hook("workloads.affidavit.dev", validate_url),
        # judged like the real request, but no ledger row and no Event
        "sideEffects": "NoneOnDryRun",
        "rules": webhook_rules(),
    }
    mutating = {
        **hook("pin.affidavit.dev", mutate_url),
        "sideEffects": "None",
        "reinvocationPolicy": "IfNeeded",
        "rules": pin_rules(),
    }
    stamping = {
        **hook("exceptions.affidavit.dev", mutate_url),
        "sideEffects": "None",
        # called again after a later mutating webhook rewrites the stamp
        "reinvocationPolicy": "IfNeeded",
        "rules": stamp_rules(),
    }
    return [
        {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "webhooks": webhooks}
        for kind, webhooks in (
            ("ValidatingWebhookConfiguration", [validating]),
            ("MutatingWebhookConfiguration", [mutating, stamping]),
        )
    ]


@dataclass(frozen=True)
class StackSettings:
    cluster_name: str
    region: str
    registry_host: str  # "127.0.0.1:PORT" of the (plain-HTTP, loopback) registry
    budget_seconds: float = defaults.BUDGET_SECONDS
    unmatched_images: str = "Warn"  # Allow | Warn | Deny (the chart's unmatchedImages)


class ClusterStack:
    """CRDs + operator + webhook + webhook configuration on a running control plane."""

    def __init__(
        self,
        control_plane: ControlPlaneInfo,
        workdir: Path,
        settings: StackSettings,
        *,
        namespace: str = NAMESPACE,
        webhook_configuration: str = WEBHOOK_CONFIGURATION,
        webhook_port: int | None = None,
        webhook_kubeconfig: Path | None = None,
        webhook_args: Sequence[str] = (),
        operator_args: Sequence[str] = (),
        webhook_env: Mapping[str, str] | None = None,
    ) -> None:
        self.cp = control_plane
        self.workdir = workdir
        self.settings = settings
        self.namespace = namespace  # where the operator keeps its index, state and Secret
        self.webhook_configuration = webhook_configuration
        #: The webhook's identity; the control plane's admin (system:masters) when None.
        self.webhook_kubeconfig = webhook_kubeconfig or control_plane.kubeconfig
        #: More `affidavit webhook serve` options (e.g. a ledger key and its checkpoint trails).
        self.webhook_args = tuple(webhook_args)
        #: More `affidavit operator run` options (e.g. the re-check of running workloads).
        self.operator_args = tuple(operator_args)
        #: More environment for the webhook process (e.g. its own HOME and XDG directories).
        self.webhook_env = dict(webhook_env or {})
        self.cert_dir = workdir / "webhook-certs"
        self.ledger_url = f"sqlite:///{workdir / 'ledger.db'}"
        # Given when the control plane was started with a client certificate for this host.
        self.webhook_port = webhook_port or free_port()
        self.webhook_url = f"https://127.0.0.1:{self.webhook_port}/validate"
        self.mutate_url = f"https://127.0.0.1:{self.webhook_port}/mutate"
        self.operator: ManagedProcess | None = None
        self.webhook: ManagedProcess | None = None
        self._admin_tls: ssl.SSLContext | None = None  # made at the first start-up poll

    # --- kubectl ---------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.cp.kubectl), f"--kubeconfig={self.cp.kubeconfig}", *args]
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise ClusterError(
                f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc

    def apply(self, obj: dict[str, Any], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", input=json.dumps(obj), check=check)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> ClusterStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._install_crds()
        self.kubectl("create", "namespace", self.namespace, check=False)
        for configuration in webhook_configurations(
            self.webhook_configuration, self.namespace, self.webhook_url, self.mutate_url
        ):
            self.apply(configuration)
        # Both start at once: the webhook waits for the certificate the operator writes and
        # for the index it publishes, so its start-up overlaps the operator's.
        self._start_operator()
        self.start_webhook(wait=False)
        self._wait_for_operator()
        self._wait_for_webhook()
        self._wait_for_ca_bundle()
        return self

    def stop(self) -> None:
        for proc in (self.webhook, self.operator):
            if proc is not None:
                proc.stop()
        self.webhook = self.operator = None

    def __enter__(self) -> ClusterStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _install_crds(self) -> None:
        for text in render_all().values():
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)
        self.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s",
            "crd/accountabilitypolicies.affidavit.dev",
            "crd/regionpolicies.affidavit.dev",
            "crd/accountabilityexceptions.affidavit.dev",
        )  # fmt: skip

    def remove_webhook_configurations(self, *, check: bool = True) -> None:
        """Delete both configurations (before the webhook stops: failurePolicy Fail)."""
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            self.kubectl("delete", kind, self.webhook_configuration, "--ignore-not-found",
                         check=check)  # fmt: skip

    def _python(self) -> list[str]:
        return [sys.executable, "-m", "affidavit.cli"]

    def _start_operator(self) -> None:
        s = self.settings
        argv = [
            *self._python(), "operator", "run",
            "--namespace", self.namespace,
            "--kubeconfig", str(self.cp.kubeconfig),
            "--cluster-name", s.cluster_name,
            "--region", s.region,
            "--ledger", self.ledger_url,
            "--webhook-url", self.webhook_url,
            "--webhook-configuration", self.webhook_configuration,
            "--cert-dir", str(self.cert_dir),
            "--resync-seconds", "30",
            *self.operator_args,
        ]  # fmt: skip
        self.operator = ManagedProcess("operator", argv, self.workdir / "operator.log")

    def _wait_for_operator(self) -> None:
        assert self.operator is not None
        self.operator.wait_until(
            lambda: (self.cert_dir / "tls.crt").exists() and self._index_published(),
            "the operator wrote the webhook certificate and published the policy index",
        )

    def _api_get(self, path: str) -> dict[str, Any] | None:
        """GET ``path`` from the apiserver as the admin; None when it is not there (yet).

        The start-up waits poll with this, not kubectl: a kubectl process per poll costs about
        a tenth of a CPU-second, taken from the operator and webhook being waited for."""
        if self._admin_tls is None:
            self._admin_tls = ssl.create_default_context(cafile=str(self.cp.ca_file))
            self._admin_tls.load_cert_chain(str(self.cp.client_cert), str(self.cp.client_key))
        url = f"{self.cp.server}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5, context=self._admin_tls) as r:  # noqa: S310 - https
                body: dict[str, Any] = json.loads(r.read())
                return body
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def _index_published(self) -> bool:
        path = f"/api/v1/namespaces/{self.namespace}/configmaps/{INDEX_CONFIGMAP}"
        return self._api_get(path) is not None

    def start_webhook(
        self, *, region: str | None = None, policy_dir: Path | None = None, wait: bool = True
    ) -> None:
        """Start (or restart, e.g. in another region, or on policy files instead of the
        operator's index) the webhook and, unless ``wait`` is false, wait until it is ready."""
        if self.webhook is not None:
            self.webhook.stop()
        s = self.settings
        source = (
            ["--policy-dir", str(policy_dir)]
            if policy_dir is not None
            else ["--policy-configmap", f"{self.namespace}/{INDEX_CONFIGMAP}"]
        )
        argv = [
            *self._python(), "webhook", "serve",
            "--tls-cert", str(self.cert_dir / "tls.crt"),
            "--tls-key", str(self.cert_dir / "tls.key"),
            "--tls-wait-seconds", "60",
            "--host", "127.0.0.1",
            "--port", str(self.webhook_port),
            "--cluster-name", s.cluster_name,
            "--region", region or s.region,
            "--ledger", self.ledger_url,
            *source,
            "--kubeconfig", str(self.webhook_kubeconfig),
            "--budget-seconds", str(s.budget_seconds),
            "--insecure-registry", s.registry_host,
            "--unmatched-images", s.unmatched_images,
            *self.webhook_args,
        ]  # fmt: skip
        client = self.cp.webhook_client
        if client is not None:  # the apiserver presents a certificate: demand it
            argv += ["--client-ca", str(client.ca_file), "--client-name", client.name]
        self.webhook = ManagedProcess(
            "webhook", argv, self.workdir / "webhook.log", self.webhook_env or None
        )
        if wait:
            self._wait_for_webhook()

    def _wait_for_webhook(self) -> None:
        assert self.webhook is not None
        self.webhook.wait_until(self._webhook_ready, "the webhook answered /readyz")

    def _webhook_ready(self) -> bool:
        return self.webhook_index_digest() is not None

    def webhook_index_digest(self) -> str | None:
        """The digest of the policy index the webhook has loaded (its /readyz), None if none."""
        ctx = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        url = f"https://127.0.0.1:{self.webhook_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
                body = r.read().decode()
        except urllib.error.HTTPError:
            return None  # 503: not ready
        return body.rsplit(" ", 1)[-1].strip() if body.startswith("ok: policy index ") else None

    def _wait_for_ca_bundle(self) -> None:
        assert self.operator is not None

        def patched() -> bool:
            for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
                path = f"/apis/admissionregistration.k8s.io/v1/{kind}/{self.webhook_configuration}"
                body = self._api_get(path) or {}
                if not (body.get("webhooks") or [{}])[0].get("clientConfig", {}).get("caBundle"):
                    return False
            return True

        self.operator.wait_until(patched, "the operator set both webhooks' caBundle")
