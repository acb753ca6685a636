"""Helpers for the keyless tests: a private Sigstore trusting the control plane, service-account
identities, and bundles a forger would make.

The identity is the control plane's own: a ServiceAccount's token from the TokenRequest API
(what a projected volume mounts) with audience ``sigstore``, which the private Fulcio accepts
through its ``kubernetes`` issuer type after discovering the apiserver's OIDC issuer.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from affidavit.attestations.dsse import PAYLOAD_TYPE_INTOTO, pae
from affidavit.envtest import ControlPlaneInfo
from affidavit.envtest.sigstore import PrivateSigstore
from binary_builds import sigstore_binaries_or_skip

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]
NAMESPACE = "keyless-ci"


def subject_of(namespace: str, service_account: str) -> str:
    """The SAN Fulcio's kubernetes issuer type writes for a service account."""
    return f"https://kubernetes.io/namespaces/{namespace}/serviceaccounts/{service_account}"


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    token: str


def service_account_token(
    kubectl: Kubectl, control_plane: ControlPlaneInfo, name: str, namespace: str = NAMESPACE
) -> Identity:
    """A fresh token of ServiceAccount ``namespace/name`` for audience ``sigstore``."""
    if kubectl("get", "namespace", namespace, check=False).returncode != 0:
        kubectl("create", "namespace", namespace)
    if kubectl("-n", namespace, "get", "serviceaccount", name, check=False).returncode != 0:
        kubectl("-n", namespace, "create", "serviceaccount", name)
    token = kubectl(
        "-n", namespace, "create", "token", name, "--audience=sigstore", "--duration=10m"
    ).stdout.strip()
    return Identity(f"{control_plane.server}/", subject_of(namespace, name), token)


def allow_issuer_discovery(kubectl: Kubectl) -> None:
    """Let Fulcio read the apiserver's OIDC discovery document and keys without credentials
    (what a cluster whose issuer is public does): bind the built-in discovery role to
    ``system:unauthenticated``."""
    if kubectl("get", "clusterrolebinding", "keyless-oidc-discovery", check=False).returncode:
        kubectl(
            "create",
            "clusterrolebinding",
            "keyless-oidc-discovery",
            "--clusterrole=system:service-account-issuer-discovery",
            "--group=system:unauthenticated",
        )


def read_bundle(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_bytes()))


def resign(bundle: dict[str, Any], key: ec.EllipticCurvePrivateKey, payload: bytes) -> None:
    """Replace the bundle's DSSE payload with ``payload`` signed by ``key`` (the holder of the
    certificate's private key signing something the log never saw)."""
    envelope = bundle["dsseEnvelope"]
    envelope["payload"] = base64.b64encode(payload).decode()
    signature = key.sign(pae(PAYLOAD_TYPE_INTOTO, payload), ec.ECDSA(hashes.SHA256()))
    envelope["signatures"] = [{"sig": base64.b64encode(signature).decode()}]


@contextmanager
def started_private_sigstore(
    control_plane: ControlPlaneInfo, kubectl: Kubectl, workdir: Path
) -> Iterator[PrivateSigstore]:
    """Fulcio (trusting the control plane's service-account issuer), Rekor v2, a TSA, a CT log,
    and a second Rekor log the trusted root does not name. In CI (``CI=true``) missing
    binaries fail the test; elsewhere it skips with the command that builds them."""
    sigstore_binaries_or_skip()
    allow_issuer_discovery(kubectl)
    sigstore = PrivateSigstore(
        workdir,
        issuers={f"{control_plane.server}/": "kubernetes"},
        issuer_ca_file=control_plane.ca_file,
        extra_rekor=True,
    )
    with sigstore:
        yield sigstore
