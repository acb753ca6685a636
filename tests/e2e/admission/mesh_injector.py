"""A service mesh's sidecar injector, as far as admission sees one: a stand-in for Istio's.

No mesh can be installed here (its images and charts come from outside), but what one does to
admission is small and exact: a mutating webhook that adds a proxy container to every Pod the
API server creates with an opt-in label, scale-ups and restarts included. This module runs such
a webhook for real: an HTTPS server on loopback with its own CA, registered with the API server
by a MutatingWebhookConfiguration, answering with a JSON Patch. The API server calls it before
Affidavit's pinning webhook (which it re-invokes after, ``reinvocationPolicy: IfNeeded``) and
before the validating webhook, as it would call Istio's.
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from affidavit.demo.stack import ClusterStack
from affidavit.envtest import wait_for
from affidavit.pki import build_ca, build_leaf, key_pem, new_key, subject_name

#: The label a Pod (template) carries to get the proxy, as Istio's ``sidecar.istio.io/inject``.
INJECT_LABEL = "mesh.example/inject"
PROXY_CONTAINER = "mesh-proxy"


def _patch(pod: dict[str, Any], proxy_image: str) -> list[dict[str, Any]]:
    containers = pod.get("spec", {}).get("containers", [])
    if any(c.get("name") == PROXY_CONTAINER for c in containers):
        return []
    proxy = {"name": PROXY_CONTAINER, "image": proxy_image, "args": ["proxy", "sidecar"]}
    return [{"op": "add", "path": "/spec/containers/-", "value": proxy}]


def _handler(proxy_image: str, calls: list[str]) -> type[BaseHTTPRequestHandler]:
    class Inject(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request = review["request"]
            patch = _patch(request["object"], proxy_image)
            calls.append(request.get("name") or request["object"]["metadata"].get("generateName"))
            response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
            if patch:
                response["patchType"] = "JSONPatch"
                response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
            body = json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": response,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Inject


def _injects(stack: ClusterStack, namespace: str, proxy_image: str) -> bool:
    """Whether the API server calls the injector yet (its configuration is read in the
    background): a labelled Pod created as a dry run comes back with the proxy."""
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "mesh-probe",
            "namespace": namespace,
            "labels": {INJECT_LABEL: "true"},
        },
        "spec": {"containers": [{"name": "probe", "image": proxy_image}]},
    }
    proc = stack.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(probe), check=False
    )
    if proc.returncode != 0:
        return False
    containers = json.loads(proc.stdout)["spec"]["containers"]
    return any(c["name"] == PROXY_CONTAINER for c in containers)


@contextmanager
def mesh_injector(
    stack: ClusterStack, namespace: str, proxy_image: str, workdir: Path
) -> Iterator[list[str]]:
    """Inject ``proxy_image`` into labelled Pods of ``namespace`` while in the block; yields the
    names of the Pods the API server sent it (the injector was really called)."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=2)
    ca_key, key = new_key(), new_key()
    ca = build_ca(ca_key, subject_name("mesh injector CA"), start, end)
    leaf = build_leaf(
        ca.subject,
        ca_key,
        key,
        subject_name("mesh injector"),
        start,
        end,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        ip_sans=["127.0.0.1"],
    )
    (workdir / "mesh.crt").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (workdir / "mesh.key").write_bytes(key_pem(key))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(workdir / "mesh.crt", workdir / "mesh.key")
    calls: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy_image, calls))
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    name = f"mesh-injector-{namespace}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "inject.mesh.example",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
                "clientConfig": {
                    "url": f"https://127.0.0.1:{server.server_port}/inject",
                    "caBundle": base64.b64encode(
                        ca.public_bytes(serialization.Encoding.PEM)
                    ).decode(),
                },
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "objectSelector": {"matchLabels": {INJECT_LABEL: "true"}},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
            }
        ],
    }
    try:
        stack.apply(config)
        wait_for(lambda: _injects(stack, namespace, proxy_image), "the injector to be called")
        yield calls
    finally:
        stack.kubectl("delete", "mutatingwebhookconfiguration", name, "--ignore-not-found")
        server.shutdown()
        server.server_close()
