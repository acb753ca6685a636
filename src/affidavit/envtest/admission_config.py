"""The kube-apiserver's side of webhook authentication: a client certificate per webhook host.

A webhook that authenticates its callers (``affidavit webhook serve --client-ca``) must be
tested against the real apiserver presenting a real client certificate, and the apiserver
only does that when it starts with ``--admission-control-config-file``: an
AdmissionConfiguration whose ``ValidatingAdmissionWebhook`` and ``MutatingAdmissionWebhook``
plugin configurations (``WebhookAdmissionConfiguration``) name a kubeconfig. In that kubeconfig
each ``users[].name`` is a webhook host (``127.0.0.1:8443`` for a ``url`` webhook,
``NAME.NAMESPACE.svc:443`` for a Service) and carries the certificate sent to it; no ``*``
entry, so no other host ever receives it. The apiserver reads the files once at start, so the
hosts (ports included) must be known before the control plane starts.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from affidavit.envtest.certs import issue_cert, make_ca

__all__ = ["DEFAULT_CLIENT_NAME", "WebhookClientAuth", "write_webhook_client_auth"]

#: Subject CN of the client certificate the apiserver presents to webhooks.
DEFAULT_CLIENT_NAME = "kube-apiserver-webhook-client"


@dataclass(frozen=True)
class WebhookClientAuth:
    """What the apiserver presents to webhooks, and what a webhook verifies it with."""

    #: The CA that signed the client certificate (``--client-ca`` of the webhook) and its key,
    #: for tests that issue other certificates from the same CA.
    ca_file: Path
    ca_key: Path
    #: The apiserver's client certificate and key (subject CN ``name``).
    cert: Path
    key: Path
    name: str
    #: The webhook hosts (``host:port``) the certificate is sent to.
    hosts: tuple[str, ...]
    #: The AdmissionConfiguration given to ``--admission-control-config-file``.
    admission_config: Path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_webhook_client_auth(
    directory: Path, hosts: Sequence[str], name: str = DEFAULT_CLIENT_NAME
) -> WebhookClientAuth:
    """Make a client CA and certificate and write the AdmissionConfiguration for ``hosts``."""
    if not hosts or any(not h or h == "*" for h in hosts):
        raise ValueError("name each webhook host (HOST:PORT); '*' would send it to every webhook")
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca("affidavit-envtest-webhook-client-ca")
    client = issue_cert(ca, name, client=True)
    ca_file, ca_key = ca.write(directory, "webhook-client-ca")
    cert, key = client.write(directory, "webhook-client")
    user = {
        "client-certificate-data": _b64(client.cert_pem),
        "client-key-data": _b64(client.key_pem),
    }
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "users": [{"name": host, "user": user} for host in hosts],
    }
    kubeconfig_path = directory / "webhook-kubeconfig.json"
    fd = os.open(kubeconfig_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(kubeconfig, f, indent=2)
    plugin = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(kubeconfig_path),
    }
    admission = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {"name": "ValidatingAdmissionWebhook", "configuration": plugin},
            {"name": "MutatingAdmissionWebhook", "configuration": plugin},
        ],
    }
    admission_path = directory / "admission-config.json"
    admission_path.write_text(json.dumps(admission, indent=2), encoding="utf-8")
    return WebhookClientAuth(ca_file, ca_key, cert, key, name, tuple(hosts), admission_path)
