"""HTTP/1.1 for the registry client: kept-alive connections per host over the standard library.

The registry client needs little of HTTP: a request, the status and headers, a body read in
chunks (so a size limit holds while it streams), TLS with the caller's trust, keep-alive, and the
proxy the environment names. The connections are plain sockets (TCP, a proxy's CONNECT tunnel,
TLS), and the requests and responses on them are framed by ``http1``: at half the CPU a request
of ``http.client``'s own (its ``email`` header parser, a buffered file per response), and
without importing ``http.client`` and ``email`` at all, which cost ``affidavit verify`` about a
tenth of its start. httpx, httpcore and h11 cost three times a whole ``cosign
verify-attestation`` just to import.

Connections are kept per (scheme, host, port) and shared by threads (one request at a time
each), so the parallel fetches of ``fetch`` reuse them. An idle connection the server closed is
noticed before reuse, and a reused connection that fails before any answer is retried once on a
new one. Proxies come from ``https_proxy``/``http_proxy``/``all_proxy`` and ``no_proxy`` (either
case), as httpx read them: an HTTPS registry is reached through a CONNECT tunnel, a plain one by
its absolute URL. Every transport failure is a ``WireError``; ``timed_out`` says which are timeouts.

A body may also be sent as it is produced (``Streamed``: a blob copied registry to registry
without holding it). Such a request goes on a new connection, since it could not be sent again
on another after a kept-alive one turned out closed, and a failure while producing it closes
the connection, so the server never takes a short body for a whole one.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from affidavit import __version__
from affidavit.attestations.http1 import BadRequest, BadResponse, Headers, Reader, request_head

#: Idle connections kept per host (``fetch`` sends at most 8 requests at once).
MAX_IDLE_PER_HOST = 16
CHUNK = 64 * 1024
USER_AGENT = f"affidavit/{__version__}"
_Key = tuple[str, str, int]


@dataclass(frozen=True)
class Streamed:
    """A request body sent as it is produced: exactly ``length`` bytes from ``chunks``, once.
    ``chunks`` raising (or yielding another length) ends the connection mid-request."""

    chunks: Iterable[bytes]
    length: int


class WireError(Exception):
    """A request failed below HTTP: connect, TLS, proxy, or a timeout (``timed_out``)."""

    def __init__(self, message: str, *, timed_out: bool = False, cause: BaseException) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.cause = cause


def _failure(e: BaseException) -> WireError:
    if isinstance(e, TimeoutError | socket.timeout):
        return WireError("timed out", timed_out=True, cause=e)
    if isinstance(e, ConnectionRefusedError):
        return WireError("connection refused", cause=e)
    if isinstance(e, socket.gaierror):
        return WireError("host name not found", cause=e)
    if isinstance(e, ssl.SSLError | ssl.CertificateError):
        return WireError(f"TLS failed ({e})", cause=e)
    return WireError(str(e) or type(e).__name__, cause=e)


def _host(key: _Key) -> str:
    """The ``Host`` field for ``key`` (the port only when it is not the scheme's default)."""
    scheme, host, port = key
    name = f"[{host}]" if ":" in host else host
    return name if port == (443 if scheme == "https" else 80) else f"{name}:{port}"


def _split(url: str) -> tuple[SplitResult, _Key]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise WireError(f"not an HTTP URL: {url!r}", cause=ValueError(url))
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as e:
        raise WireError(f"invalid port in {url!r}", cause=e) from e
    return parts, (scheme, parts.hostname.lower(), port)


def _no_proxy(host: str, rules: list[str]) -> bool:
    for rule in rules:
        rule = rule.strip().lower().lstrip(".")
        name = rule.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]") if rule else ""
        if rule == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


class _Connection:
    """One connection to a host: TCP (``TCP_NODELAY``, as ``http.client`` sets it), through an
    HTTP proxy's CONNECT tunnel when ``tunnel`` names the target, then TLS when ``tls`` is given.
    Opened by ``connect``; ``sock`` is None until then and after ``close``."""

    __slots__ = ("_address", "_server_name", "_tls", "_tunnel", "sock", "timeout")

    def __init__(
        self,
        address: tuple[str, int],
        *,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        server_name: str = "",
        tunnel: tuple[str, Mapping[str, str]] | None = None,
    ) -> None:
        self._address = address
        self._tls, self._server_name, self._tunnel = tls, server_name, tunnel
        self.timeout = timeout
        self.sock: socket.socket | None = None

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tunnel is not None:
                _open_tunnel(sock, *self._tunnel)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._server_name)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        return sock

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()


def _send_streamed(sock: socket.socket, method: str, head: bytes, body: Streamed) -> Reader:
    """Send ``head`` and ``body``; the answer's reader, its head read. A server that refuses
    before it has read the body (a 401, 404 or 413 of a registry) answers and closes, and the
    send fails with a broken pipe: the answer it sent is read then, so the caller hears why."""
    sock.sendall(head)
    try:
        _send_chunks(sock, body)
    except OSError as failed:
        raw = Reader(sock, method)
        try:
            raw.begin()
        except (OSError, BadResponse):
            raise failed from None
        raw.keep_alive = False  # the rest of the body was never sent: the connection is done
        return raw
    raw = Reader(sock, method)
    raw.begin()
    return raw


def _send_chunks(sock: socket.socket, body: Streamed) -> None:
    sent = 0
    for chunk in body.chunks:
        sent += len(chunk)
        if sent > body.length:
            raise ValueError(f"the body is longer than the {body.length} bytes it declared")
        sock.sendall(chunk)
    if sent != body.length:
        raise ValueError(f"the body ended at {sent} of the {body.length} bytes it declared")


def _open_tunnel(sock: socket.socket, target: str, headers: Mapping[str, str]) -> None:
    """Ask the proxy on ``sock`` for a tunnel to ``target`` (``host:port``), in HTTP/1.1 as
    httpx asks (``http.client``'s own tunnel spoke HTTP/1.0 before Python 3.12).

    Raises:
        OSError: the proxy refused, or answered more than its head (TLS must start clean).
    """
    sock.sendall(request_head("CONNECT", target, target, headers, None))
    answer = Reader(sock, "CONNECT")
    answer.begin()
    if answer.status != 200:
        raise OSError(f"Tunnel connection failed: {answer.status}")
    if answer.unread:
        raise OSError("the proxy sent more than its answer to CONNECT")


class Response:
    """A response whose body is read with ``iter_bytes`` (once) or ``read``."""

    def __init__(self, raw: Reader) -> None:
        self._raw = raw
        self.status_code = raw.status
        self.headers: Headers = raw.headers

    def iter_bytes(self) -> Iterator[bytes]:
        try:
            yield from self._raw.chunks()
        except (OSError, BadResponse) as e:
            raise _failure(e) from e

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())


class Wire:
    """Kept-alive HTTP/1.1 connections per host, safe to share between threads."""

    def __init__(self, context: ssl.SSLContext, *, env: Mapping[str, str] | None = None) -> None:
        self._context = context
        self._idle: dict[_Key, list[_Connection]] = {}
        self._lock = threading.Lock()
        environ = os.environ if env is None else env
        lower = {k.lower(): v for k, v in environ.items() if k.isupper() and v}
        lower.update({k: v for k, v in environ.items() if k.islower() and v})
        self._proxies = {
            scheme: lower.get(f"{scheme}_proxy") or lower.get("all_proxy") or ""
            for scheme in ("http", "https")
        }
        self._no_proxy = lower.get("no_proxy", "").split(",")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | Streamed | None = None,
        timeout: float,
    ) -> Iterator[Response]:
        """Send one request; the response's body is read inside the context.

        Raises:
            WireError: no answer (connect, TLS, proxy, reset) or a timeout.
            ValueError: a ``Streamed`` body's chunks came to another length than it declared
                (the connection is closed first); whatever its chunks raise, likewise.
        """
        parts, key = _split(url)
        send = {"User-Agent": USER_AGENT, "Accept": "*/*", **headers}
        streamed = isinstance(content, Streamed)
        for attempt in range(2):
            connection, reused, target = self._connection(parts, key, timeout, send, fresh=streamed)
            try:
                sock = connection.sock or connection.connect()
                if isinstance(content, Streamed):
                    head = request_head(method, target, _host(key), send, content.length)
                    raw = _send_streamed(sock, method, head, content)
                else:
                    head = request_head(method, target, _host(key), send, content)
                    sock.sendall(head + content if content else head)  # one write: no Nagle wait
                    raw = Reader(sock, method)
                    raw.begin()
                break
            except ConnectionError as e:  # NoAnswer among them: a kept-alive one the server ended
                connection.close()
                if not reused or attempt:
                    raise _failure(e) from e
            except (OSError, BadResponse, BadRequest) as e:
                connection.close()
                raise _failure(e) from e
            except BaseException:  # a streamed body's producer failed: the request is unfinished
                connection.close()
                raise
        response = Response(raw)
        try:
            yield response
        finally:
            self._release(key, connection, raw)

    def _release(self, key: _Key, connection: _Connection, raw: Reader) -> None:
        if not raw.done:
            if raw.length is None or raw.length > CHUNK:
                connection.close()  # an unread body (a redirect's, a refused blob): not kept
                return
            try:
                for _ in raw.chunks():
                    pass
            except (OSError, BadResponse):
                connection.close()
                return
        if not raw.reusable or connection.sock is None:
            connection.close()  # the server ends it (Connection: close, a body to the close)
            return
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE_PER_HOST:
                idle.append(connection)
                return
        connection.close()

    def _connection(
        self,
        parts: SplitResult,
        key: _Key,
        timeout: float,
        headers: dict[str, str],
        *,
        fresh: bool = False,
    ) -> tuple[_Connection, bool, str]:
        """A connection for ``key`` (idle and still open, else new; always new when ``fresh``),
        whether it was reused, and the request target to send on it."""
        scheme, host, port = key
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        proxy = self._proxies[scheme] if not _no_proxy(host, self._no_proxy) else ""
        if proxy and scheme == "http":
            target = parts.geturl()
        while not fresh:
            with self._lock:
                idle = self._idle.get(key)
                connection = idle.pop() if idle else None
            if connection is None:
                break
            sock = connection.sock
            if sock is not None and not select.select([sock], [], [], 0)[0]:
                sock.settimeout(timeout)
                connection.timeout = timeout
                return connection, True, target
            connection.close()  # closed by the server while idle (or sent something unasked)
        tls = self._context if scheme == "https" else None
        if not proxy:
            return (
                _Connection((host, port), timeout=timeout, tls=tls, server_name=host),
                False,
                target,
            )
        via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if via.scheme != "http" or not via.hostname:
            raise WireError(
                f"proxy {via.scheme}://{via.hostname} is not supported (only http:// proxies)",
                cause=ValueError(proxy),
            )
        auth = {}
        if via.username:
            pair = f"{unquote(via.username)}:{unquote(via.password or '')}".encode()
            auth["Proxy-Authorization"] = "Basic " + base64.b64encode(pair).decode()
        via_address = (via.hostname, via.port or 80)
        if scheme == "https":
            name = f"[{host}]" if ":" in host else host
            tunnel = (f"{name}:{port}", auth)
            tunnelled = _Connection(
                via_address, timeout=timeout, tls=tls, server_name=host, tunnel=tunnel
            )
            return tunnelled, False, target
        headers.update(auth)
        return _Connection(via_address, timeout=timeout), False, target
