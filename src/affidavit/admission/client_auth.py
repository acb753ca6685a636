"""Only the kube-apiserver may ask for a decision: client-certificate authentication of the webhook.

Why: a call to ``/validate`` writes a decision into the ledger, and the operator turns denials
into Events in the request's namespace. Without authentication, anyone who reaches the Service
could forge decisions and Events. The kube-apiserver presents a client certificate to a webhook
when its AdmissionConfiguration says so (``WebhookAdmissionConfiguration.kubeConfigFile``: a
kubeconfig whose ``users[].name`` is the webhook's host, e.g. ``affidavit.affidavit-system.svc:443``
or ``127.0.0.1:8443``).

How: with a client CA configured (``--client-ca``), the TLS layer asks every client for a
certificate but does not insist (``CERT_OPTIONAL``): the kubelet's probes have none, and
``/healthz``, ``/readyz`` and ``/metrics`` must stay reachable. A certificate that is sent is
verified against the CA during the handshake (one from another CA, or without the clientAuth
usage, never gets a connection). Then, per path, :class:`RequireClientCert` lets through only
requests whose certificate names one of the expected identities (``--client-name``: the subject
CN or a DNS SAN; a CA alone is not enough, because clusters often share one CA among many client
identities). Every path except the three open ones needs it, so a route added later is closed
by default. A refused request gets 401 before its body is read: nothing reaches the judge, the
ledger or the Events.

uvicorn does not put the peer certificate in the ASGI scope, so :class:`PeerCertProtocol` reads it
off the TLS connection once the handshake is done and adds it to every request's scope the way the
ASGI TLS extension does (``scope["extensions"]["tls"]["client_cert_chain"]``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from affidavit.errors import UsageError
from affidavit.policy.decision import Caller
from affidavit.printable import printable

log = logging.getLogger("affidavit.admission")

#: Reachable without a client certificate: the kubelet's probes and Prometheus.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class PeerCertificate:
    """The verified client certificate of a connection: its subject and the names it carries."""

    subject: str  # RFC 4514, e.g. "CN=kube-apiserver-webhook-client,O=affidavit"
    names: tuple[str, ...]  # subject CNs, then DNS SANs


@dataclass(frozen=True)
class ClientAuth:
    """Who may call the webhook: a certificate signed by ``ca_file`` naming one of ``names``."""

    ca_file: Path
    names: frozenset[str]

    def __post_init__(self) -> None:
        if not self.names:
            raise UsageError(
                "a client CA without an expected client name would admit every certificate "
                "that CA signed",
                hint="name the identity the kube-apiserver presents: --client-name CN "
                "(the subject CN or a DNS SAN of its webhook client certificate)",
            )

    def refusal(self, path: str, peer: PeerCertificate | None) -> str | None:
        """None when ``peer`` may call ``path``; else why not (the text of the 401)."""
        if peer is not None and set(peer.names) & self.names:
            return None
        found = "no client certificate" if peer is None else f"client certificate {peer.subject}"
        if peer is not None and len(peer.names) > 1:
            found += f" (names: {', '.join(peer.names)})"
        wanted = " or ".join(sorted(self.names))
        return (
            f"unauthenticated request to {path}: found {found}; expected a client certificate "
            f"signed by the webhook's client CA whose subject CN or DNS name is {wanted}; fix: "
            "give the kube-apiserver that certificate for this webhook's host in its "
            "AdmissionConfiguration (WebhookAdmissionConfiguration kubeConfigFile)"
        )


def server_verifies_clients(ctx: ssl.SSLContext, client_ca: Path) -> None:
    """Ask every client for a certificate and verify any that is sent against ``client_ca``."""
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cafile=str(client_ca))
    # The identity is read once per connection (after the handshake): a TLS 1.2 renegotiation
    # must not present another certificate on the same connection.
    ctx.options |= ssl.OP_NO_RENEGOTIATION


@lru_cache(maxsize=64)
def _parse(der: bytes) -> PeerCertificate:
    cert = x509.load_der_x509_certificate(der)
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    return PeerCertificate(cert.subject.rfc4514_string(), tuple(names))


def peer_certificate(tls_object: ssl.SSLObject | ssl.SSLSocket | None) -> PeerCertificate | None:
    """The client certificate verified during the handshake, or None when none was sent."""
    if tls_object is None or not tls_object.getpeercert():  # {} / None: nothing verified
        return None
    der = tls_object.getpeercert(binary_form=True)
    return _parse(der) if der else None


#: The longest request target and the most header bytes a request may carry. The API server
#: sends ``/validate?timeout=10s`` and a few short headers; httptools itself has no limit, and
#: uvicorn grows the target by concatenation (quadratic), so one unauthenticated connection
#: could send a 16 MB target or header and hold the event loop and the memory meanwhile.
MAX_TARGET_BYTES = 8 * 1024
MAX_HEADER_BYTES = 64 * 1024
#: httptools gathers a header's pieces before it hands the header over, so the bytes received
#: while a request's head is incomplete are bounded too (loosely: a read may hold the start of
#: the body as well, and uvloop reads up to 256 KiB at once).
MAX_HEAD_READ_BYTES = 1024 * 1024


class RequestHeadTooLarge(Exception):
    """Raised in the parser's callback: httptools turns it into a parse error, which uvicorn
    answers with 400 and a closed connection."""


class PeerCertProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the connection's verified client certificate in each
    scope (httptools: a C parser; uvicorn's pure-Python h11 one cost a third of the event
    loop's time per request, see ``benchmarks/bench_webhook.py``), and limits on the request's
    target and headers (``MAX_TARGET_BYTES``, ``MAX_HEADER_BYTES``)."""

    _header_bytes = 0
    _head_read = 0  # bytes received since the request began, until its headers are complete
    _in_head = True

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_read += len(data)
            if self._head_read > MAX_HEAD_READ_BYTES:
                self.send_400_response("Request head too large.")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._header_bytes = 0
        self._in_head = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_read = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True  # the next request on this connection begins with its head
        super().on_message_complete()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_TARGET_BYTES:
            raise RequestHeadTooLarge(f"request target over {MAX_TARGET_BYTES} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise RequestHeadTooLarge(f"request headers over {MAX_HEADER_BYTES} bytes")
        super().on_header(name, value)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = peer_certificate(transport.get_extra_info("ssl_object"))
        tls = {
            "client_cert_chain": [] if peer is None else [peer],
            "client_cert_name": None if peer is None else peer.subject,
            "client_cert_error": None,
        }
        inner: ASGIApp = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("extensions", {})["tls"] = tls
            await inner(scope, receive, send)

        self.app = app


def _peer_of(scope: Scope) -> PeerCertificate | None:
    chain = (scope.get("extensions") or {}).get("tls", {}).get("client_cert_chain") or []
    return chain[0] if chain and isinstance(chain[0], PeerCertificate) else None


def caller_of(scope: Scope, auth: ClientAuth | None) -> Caller:
    """Who made a request, as its decision records it: authenticated only when ``auth`` is on
    (then :class:`RequireClientCert` has already refused anyone else) and the certificate passed."""
    peer = _peer_of(scope)
    if auth is None or peer is None or auth.refusal(str(scope.get("path", "")), peer) is not None:
        return Caller(authenticated=False)
    return Caller(authenticated=True, identity=peer.subject)


class RequireClientCert:
    """ASGI middleware: every path but :data:`OPEN_PATHS` needs an authorised client certificate."""

    def __init__(
        self,
        app: ASGIApp,
        auth: ClientAuth,
        on_refused: Callable[[], None] | None = None,
        open_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app, self.auth, self.on_refused = app, auth, on_refused
        # Read-only routes the apiserver's service proxy reaches (it presents no certificate).
        self.open_prefixes = open_prefixes

    def _open(self, path: str) -> bool:
        return path in OPEN_PATHS or any(
            path == p or path.startswith(p + "/") for p in self.open_prefixes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        reason = self.auth.refusal(scope["path"], _peer_of(scope))
        if reason is None:
            await self.app(scope, receive, send)
            return
        if self.on_refused is not None:
            self.on_refused()
        client = scope.get("client") or ("?", 0)
        # the path is the caller's (percent-decoded: a newline would forge a log line)
        log.warning(
            "refused %s %s from %s: %s",
            scope["method"],
            printable(scope["path"][:200]),
            client[0],
            printable(reason[:400]),
        )
        body = json.dumps({"error": reason}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
