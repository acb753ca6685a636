"""The admin kubeconfig of an envtest control plane.

kubectl, helm, the operator and the tests all reach the control plane through one
self-contained kubeconfig file (context ``affidavit-envtest``, CA and client identity
embedded), written owner-only because it holds a ``system:masters`` key.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from affidavit.envtest.certs import CertKeyPair

__all__ = ["write_kubeconfig"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(path: Path, server: str, ca: CertKeyPair, user: CertKeyPair) -> None:
    """A kubeconfig with the CA and client identity embedded (JSON is valid YAML)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "affidavit-envtest",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca.cert_pem)},
            }
        ],
        "users": [
            {
                "name": "affidavit-admin",
                "user": {
                    "client-certificate-data": _b64(user.cert_pem),
                    "client-key-data": _b64(user.key_pem),
                },
            }
        ],
        "contexts": [
            {
                "name": "affidavit-envtest",
                "context": {"cluster": "affidavit-envtest", "user": "affidavit-admin"},
            }
        ],
        "current-context": "affidavit-envtest",
        "preferences": {},
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=2)
