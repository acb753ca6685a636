"""HTTP/1.1 for the registry client: kept-alive connections per host over the standard library.

The registry client needs little of HTTP: a request, the status and headers, a body read in
chunks (so a size limit holds while it streams), TLS with the caller's trust, keep-alive, and the
proxy the environment names. ``http.client`` opens the connections (TCP, TLS, a proxy's CONNECT
tunnel); the requests and responses on them are framed by ``http1``, at half the CPU a request
of ``http.client``'s own (its ``email`` header parser, a buffered file per response). httpx,
httpcore and h11 cost three times a whole ``cosign verify-attestation`` just to import.

Connections are kept per (scheme, host, port) and shared by threads (one request at a time
each), so the parallel fetches of ``fetch`` reuse them. An idle connection the server closed is
noticed before reuse, and a reused connection that fails before any answer is retried once on a
new one. Proxies come from ``https_proxy``/``http_proxy``/``all_proxy`` and ``no_proxy`` (either
case), as httpx read them: an HTTPS registry is reached through a CONNECT tunnel, a plain one by
its absolute URL. Every transport failure is a ``WireError``; ``timed_out`` says which are timeouts.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from urllib.parse import SplitResult, unquote, urlsplit

from affidavit import __version__
from affidavit.attestations.http1 import BadRequest, BadResponse, Headers, Reader, request_head

#: Idle connections kept per host (``fetch`` sends at most 8 requests at once).
MAX_IDLE_PER_HOST = 16
CHUNK = 64 * 1024
USER_AGENT = f"affidavit/{__version__}"
_Key = tuple[str, str, int]


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


class _Tunnelled(http.client.HTTPSConnection):
    """HTTPS to ``host`` through an HTTP proxy's CONNECT tunnel (HTTP/1.1, as httpx sends it;
    ``http.client``'s own tunnel speaks HTTP/1.0 before Python 3.12)."""

    def __init__(
        self,
        proxy: tuple[str, int],
        host: str,
        port: int,
        *,
        timeout: float,
        context: ssl.SSLContext,
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._via = proxy
        self._via_headers = dict(headers)
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection(self._via, self.timeout)
        try:
            name = f"[{self.host}]" if ":" in self.host else self.host
            lines = [f"CONNECT {name}:{self.port} HTTP/1.1", f"Host: {name}:{self.port}"]
            lines += [f"{k}: {v}" for k, v in self._via_headers.items()]
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            answer = http.client.HTTPResponse(sock, method="CONNECT")
            answer.begin()
            if answer.status != 200:
                raise OSError(f"Tunnel connection failed: {answer.status} {answer.reason}")
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


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
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
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
        content: bytes | None = None,
        timeout: float,
    ) -> Iterator[Response]:
        """Send one request; the response's body is read inside the context.

        Raises:
            WireError: no answer (connect, TLS, proxy, reset) or a timeout.
        """
        parts, key = _split(url)
        send = {"User-Agent": USER_AGENT, "Accept": "*/*", **headers}
        for attempt in range(2):
            connection, reused, target = self._connection(parts, key, timeout, send)
            try:
                if connection.sock is None:
                    connection.connect()
                sock = connection.sock
                head = request_head(method, target, _host(key), send, content)
                sock.sendall(head + content if content else head)  # one write: no Nagle wait
                raw = Reader(sock, method)
                raw.begin()
                break
            except ConnectionError as e:  # NoAnswer among them: a kept-alive one the server ended
                connection.close()
                if not reused or attempt:
                    raise _failure(e) from e
            except (OSError, BadResponse, BadRequest, http.client.HTTPException) as e:
                connection.close()
                raise _failure(e) from e
        response = Response(raw)
        try:
            yield response
        finally:
            self._release(key, connection, raw)

    def _release(self, key: _Key, connection: http.client.HTTPConnection, raw: Reader) -> None:
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
        self, parts: SplitResult, key: _Key, timeout: float, headers: dict[str, str]
    ) -> tuple[http.client.HTTPConnection, bool, str]:
        """A connection for ``key`` (idle and still open, else new), whether it was reused, and
        the request target to send on it."""
        scheme, host, port = key
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        proxy = self._proxies[scheme] if not _no_proxy(host, self._no_proxy) else ""
        if proxy and scheme == "http":
            target = parts.geturl()
        while True:
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
        if not proxy:
            if scheme == "https":
                new: http.client.HTTPConnection = http.client.HTTPSConnection(
                    host, port, timeout=timeout, context=self._context
                )
            else:
                new = http.client.HTTPConnection(host, port, timeout=timeout)
            return new, False, target
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
        if scheme == "https":
            tunnelled = _Tunnelled(
                (via.hostname, via.port or 80),
                host,
                port,
                timeout=timeout,
                context=self._context,
                headers=auth,
            )
            return tunnelled, False, target
        headers.update(auth)
        return (
            http.client.HTTPConnection(via.hostname, via.port or 80, timeout=timeout),
            False,
            target,
        )
