"""The wire under the registry client: which hosts it may reach, redirects, deadlines, limits.

A registry is a remote party, and in the admission webhook the image reference that names it
comes from whoever wrote the Pod spec. So the rules about *where* a request may go live here, in
one place, rather than in each distribution call: redirects are followed by hand (only to the
same host, or to a host the caller allows, and without the Authorization header when the host
changes); a caller-set deadline caps every request's timeout, so outstanding work stops when
the caller's budget does; and failures are sorted into the registry's own unavailability
(``RegistryUnavailableError``: refused, timed out on its own, 5xx; not 429) versus everything
else, which callers must not mistake for an outage.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from affidavit.attestations.http1 import Headers
from affidavit.attestations.registry_wire import Response as WireResponse
from affidavit.attestations.registry_wire import Streamed, Wire, WireError
from affidavit.errors import RegistryError

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_DEADLINE: ContextVar[float | None] = ContextVar("affidavit_registry_deadline", default=None)


class ContentError(RegistryError):
    """One blob or manifest is missing, oversized or not what its digest says (the registry
    itself answered; other content may still be fine)."""


class BodyTooLargeError(ContentError):
    """A response body is larger than the caller's limit (found while streaming)."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} is {size} bytes, over the {limit}-byte limit")
        self.size = size
        self.limit = limit


class RegistryUnavailableError(RegistryError):
    """The registry itself failed: connection refused, its own timeout, TLS, or HTTP 5xx (not
    429: a throttled account is the request's to choose, ``RegistryClient._check``).

    The only failure that may count as "registry unavailable" for a fail-open policy; the
    message holds the detail for logs and the CLI, ``registry`` the host to name elsewhere.
    """

    def __init__(self, registry: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.registry = registry


class RegistryAccessError(RegistryError):
    """The registry answered about the credentials: refused them (401, 403, its token service's
    refusal, none given where it needs some) or throttled their account (429). Another account
    may do: a workload's pull secrets are tried in turn, as the kubelet does."""


class BudgetExceededError(RegistryError):
    """The caller's deadline passed before the registry answered (the caller's limit, not an
    outage: the registry was never given its own full timeout)."""


class ForbiddenHostError(RegistryError):
    """A registry sent the client to a host it may not contact (a redirect or a token realm)."""


def is_loopback(host: str) -> bool:
    """``host[:port]`` names this machine (localhost or a loopback address)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def authority(url: str) -> str:
    """``host[:port]`` of ``url``, lower-case, without the scheme's default port.

    Raises:
        ValueError: the port is not a number.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return host if port is None or port == default else f"{host}:{port}"


def host_matches(host: str, pattern: str) -> bool:
    """``pattern`` is ``HOST[:PORT]`` (exact) or ``*.DOMAIN[:PORT]`` (any sub-domain of DOMAIN)."""
    host, pattern = host.lower(), pattern.lower()
    if pattern.startswith("*."):
        suffix = pattern[1:]
        name, _, port = host.partition(":")
        want, _, want_port = suffix.partition(":")
        return name.endswith(want) and len(name) > len(want) and port == want_port
    return host == pattern


@dataclass(frozen=True)
class HostRules:
    """Where requests may go beyond the registry they are for, and where plain HTTP is allowed.

    ``allowed`` None: any host (the CLI, where the user names the registry); otherwise only
    hosts matching one of these patterns (see ``host_matches``).
    """

    allowed: frozenset[str] | None = None
    insecure_hosts: frozenset[str] = frozenset()
    insecure: bool = False

    def permits(self, host: str) -> bool:
        return self.allowed is None or any(host_matches(host, p) for p in self.allowed)

    def plain_http(self, host: str) -> bool:
        return self.insecure or host in self.insecure_hosts or is_loopback(host)


class DefaultTrust(ssl.SSLContext):
    """The default TLS verification, as httpx's (certifi's CAs, or ``$SSL_CERT_FILE`` /
    ``$SSL_CERT_DIR``), with the CAs loaded at the first handshake rather than when a client is
    made.

    Loading certifi's bundle cost a sixth of a one-attestation ``affidavit verify`` against a
    registry reached over plain HTTP (loopback, ``--insecure-registry``), which never needs it.
    Hostname checking and ``CERT_REQUIRED`` are set from the start; no handshake runs without CAs.
    """

    _trusted: bool
    _trust_lock: threading.Lock

    def __new__(cls) -> DefaultTrust:
        context = super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        context._trusted = False
        context._trust_lock = threading.Lock()
        return context

    def _trust(self) -> None:
        with self._trust_lock:
            if self._trusted:
                return
            if os.environ.get("SSL_CERT_FILE"):  # as httpx's default context (trust_env)
                self.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
            elif os.environ.get("SSL_CERT_DIR"):
                self.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
            else:
                import certifi

                self.load_verify_locations(cafile=certifi.where())
            self._trusted = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._trust()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._trust()
        return super().wrap_bio(*args, **kwargs)


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Cap every registry request made in this context so that it ends by ``at`` (monotonic)."""
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def request_timeout(registry: str, default: float) -> tuple[float, bool]:
    """The timeout for the next request, and whether the caller's deadline (not ``default``) set it."""
    at = _DEADLINE.get()
    if at is None:
        return default, False
    left = at - time.monotonic()
    if left <= 0:
        raise BudgetExceededError(f"the time budget ran out before registry {registry} answered")
    return (left, True) if left < default else (default, False)


def connect_reason(error: WireError) -> str:
    """A short human reason for a transport failure (refused, timed out, ...)."""
    return str(error)


@dataclass(frozen=True)
class Response:
    status: int
    headers: Headers
    body: bytes
    url: str


def send(
    http: Wire,
    method: str,
    url: str,
    *,
    registry: str,
    rules: HostRules,
    timeout: float,
    headers: Mapping[str, str],
    content: bytes | Streamed | None = None,
    limit: int | None = None,
    what: str | None = None,
) -> Response:
    """One registry request, following redirects only where ``rules`` allow (not with a
    ``Streamed`` body, which cannot be sent twice).

    Raises:
        RegistryUnavailableError: the registry refused the connection or timed out on its own.
        BudgetExceededError: the deadline set with ``deadline()`` passed first.
        ForbiddenHostError: a redirect points at a host ``rules`` do not allow, or downgrades
            to plain HTTP on a host that must use TLS.
        BodyTooLargeError: the body is over ``limit`` (checked while streaming).
    """
    target = url
    origin = authority(target)
    send_headers = dict(headers)
    for _hop in range(MAX_REDIRECTS + 1):
        r = _once(http, method, target, registry, send_headers, content, limit, what, timeout)
        location = r.headers.get("location")
        if r.status not in _REDIRECTS or not location:
            return r
        if isinstance(content, Streamed):
            raise RegistryError(
                f"registry {registry} redirected an upload of {content.length} bytes, which "
                "cannot be sent again"
            )
        target, send_headers = _redirected(registry, rules, origin, target, location, send_headers)
        if r.status == 303:
            method, content = "GET", None
    raise RegistryError(f"registry {registry} redirected more than {MAX_REDIRECTS} times")


@contextlib.contextmanager
def open_body(
    http: Wire,
    url: str,
    *,
    registry: str,
    rules: HostRules,
    timeout: float,
    headers: Mapping[str, str],
) -> Iterator[WireResponse]:
    """A GET whose answer's body is read inside the context, as it arrives (a blob copied on
    without being held), after redirects followed as ``send`` follows them.

    Raises:
        RegistryUnavailableError, BudgetExceededError, ForbiddenHostError: as ``send``.
    """
    target = url
    origin = authority(target)
    send_headers = dict(headers)
    for _hop in range(MAX_REDIRECTS + 1):
        wait, budget_bound = request_timeout(registry, timeout)
        try:
            with http.stream("GET", target, headers=send_headers, timeout=wait) as r:
                location = r.headers.get("location")
                if r.status_code not in _REDIRECTS or not location:
                    yield r
                    return
        except WireError as e:
            raise _wire_failure(registry, e, budget_bound) from e
        target, send_headers = _redirected(registry, rules, origin, target, location, send_headers)
    raise RegistryError(f"registry {registry} redirected more than {MAX_REDIRECTS} times")


def _redirected(
    registry: str,
    rules: HostRules,
    origin: str,
    target: str,
    location: str,
    headers: dict[str, str],
) -> tuple[str, dict[str, str]]:
    """Where a redirect from ``target`` to ``location`` leads, and the headers to send there
    (without Authorization on another host), or the error that forbids following it."""
    target = urljoin(target, location)
    try:
        host = authority(target)
    except ValueError as e:
        raise RegistryError(f"registry {registry} redirected to an invalid URL") from e
    if host != origin:
        if not rules.permits(host):
            import logging  # only when a registry misbehaves: the start of a verify

            logging.getLogger("affidavit.registry").warning(
                "registry %s redirected to %s, which is not allowed", registry, host
            )
            raise ForbiddenHostError(
                f"registry {registry} redirected to another host, which is not among the "
                "allowed registry hosts",
                hint="if that host is the registry's blob storage, add it to "
                "registry.allowedHosts (--registry-allowed-host)",
            )
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    if urlsplit(target).scheme.lower() != "https" and not rules.plain_http(host):
        raise ForbiddenHostError(
            f"registry {registry} redirected to plain HTTP on {host}, which must use TLS"
        )
    return target, headers


def _once(
    http: Wire,
    method: str,
    url: str,
    registry: str,
    headers: Mapping[str, str],
    content: bytes | Streamed | None,
    limit: int | None,
    what: str | None,
    default_timeout: float,
) -> Response:
    timeout, budget_bound = request_timeout(registry, default_timeout)
    try:
        with http.stream(method, url, headers=headers, content=content, timeout=timeout) as r:
            label = what or f"response from {registry}"
            declared = r.headers.get("content-length")
            too_big = limit is not None and declared is not None and int(declared) > limit
            if too_big and r.status_code == 200 and method != "HEAD" and limit is not None:
                raise BodyTooLargeError(label, int(declared or 0), limit)
            chunks: list[bytes] = []
            size = 0
            if method != "HEAD" and r.status_code not in _REDIRECTS:
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise BodyTooLargeError(label, size, limit)
                    chunks.append(chunk)
                    request_timeout(registry, default_timeout)  # raises once the deadline passed
            return Response(r.status_code, r.headers, b"".join(chunks), url)
    except WireError as e:
        raise _wire_failure(registry, e, budget_bound) from e


def _wire_failure(registry: str, e: WireError, budget_bound: bool) -> RegistryError:
    """A request's failure below HTTP as the caller sees it: the caller's own deadline run out
    (a timeout that the budget, not the registry's timeout, set), else the registry unreachable."""
    if e.timed_out and budget_bound:
        return BudgetExceededError(f"the time budget ran out before registry {registry} answered")
    return _unreachable(registry, e)


def _unreachable(registry: str, e: WireError) -> RegistryUnavailableError:
    return RegistryUnavailableError(
        registry,
        f"registry {registry} is unreachable: {connect_reason(e)}; check the address "
        "and that the registry is running",
    )


def allowed_patterns(patterns: Collection[str] | None) -> frozenset[str] | None:
    """Normalise a host allow-list (lower-case, no scheme or path); None stays None (any host)."""
    if patterns is None:
        return None
    out = set()
    for p in patterns:
        p = p.strip().lower()
        p = p.split("://", 1)[-1].split("/", 1)[0].removesuffix(":443")
        if p:
            out.add(p)
    return frozenset(out)
