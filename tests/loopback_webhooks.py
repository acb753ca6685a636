"""An admission webhook of the tests' own on 127.0.0.1, which a real kube-apiserver calls.

Some tests need another party's webhook in the chain (a service mesh's sidecar injector; a
plain one that proves the apiserver calls webhooks at all). This serves one over HTTPS with a CA
made for it: each AdmissionReview's ``request`` goes to ``respond``, whose answer (``allowed``,
a ``patch`` list made into a JSON Patch, a ``status``) is sent back with the request's uid.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from affidavit.envtest import issue_cert, make_ca

Respond = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class LoopbackWebhook:
    url: str
    ca_pem: bytes
    #: every AdmissionReview the apiserver sent, in order
    reviews: list[dict[str, Any]] = field(default_factory=list)

    def client_config(self) -> dict[str, Any]:
        """The ``clientConfig`` of a webhook configuration that calls this server."""
        return {"url": self.url, "caBundle": base64.b64encode(self.ca_pem).decode()}


def _answer(review: dict[str, Any], respond: Respond) -> bytes:
    request = review["request"]
    response = {"uid": request["uid"], **respond(request)}
    patch = response.pop("patch", None)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return json.dumps(
        {"apiVersion": review["apiVersion"], "kind": "AdmissionReview", "response": response}
    ).encode()


@contextmanager
def loopback_webhook(respond: Respond, workdir: Path, name: str) -> Iterator[LoopbackWebhook]:
    """Serve ``respond`` at ``https://127.0.0.1:PORT/review`` while in the block."""
    ca = make_ca(f"{name}-ca")
    cert, key = issue_cert(ca, name, ip_sans=["127.0.0.1"]).write(workdir, name)
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            seen.append(review)
            body = _answer(review, respond)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(cert), str(key))
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield LoopbackWebhook(f"https://127.0.0.1:{port}/review", ca.cert_pem, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
