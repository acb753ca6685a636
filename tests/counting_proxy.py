"""A recording reverse proxy on 127.0.0.1 in front of a real registry, for the tests of what
Affidavit sends on the wire.

Every request is forwarded as is to the registry behind it and its answer returned as is; the
proxy records each request (method, path, the client connection it came on) and the most
requests it ever had in flight at once. A test can then assert how many requests a lookup
makes, in which rounds, whether it reuses connections, and whether independent requests were
sent together, without asserting any wall-clock time.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Headers of the registry's answer not passed on as they are (the proxy sets its own framing).
_HOP = {"connection", "keep-alive", "transfer-encoding"}


@dataclass
class Forwarded:
    method: str
    path: str
    connection: int  # the client's source port: one per kept-alive connection
    #: The most requests in flight at once (this one included) while this one was.
    alongside: int = 1
    #: The paths of the requests already in flight when this one arrived.
    arrived_during: tuple[str, ...] = ()
    #: The paths of the requests already answered when this one arrived.
    answered_before: tuple[str, ...] = ()


@dataclass
class CountingProxy:
    host: str  # 127.0.0.1:PORT
    seen: list[Forwarded] = field(default_factory=list)
    most_in_flight: int = 0
    _in_flight: int = 0
    _active: list[Forwarded] = field(default_factory=list)
    _answered: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self._answered.clear()
            self.most_in_flight = 0

    def requests(self) -> list[tuple[str, str]]:
        return [(f.method, f.path) for f in self.seen]

    def _enter(self, seen: Forwarded) -> None:
        with self._lock:
            seen.arrived_during = tuple(other.path for other in self._active)
            seen.answered_before = tuple(self._answered)
            self.seen.append(seen)
            self._active.append(seen)
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
            for other in self._active:
                other.alongside = max(other.alongside, self._in_flight)

    def _leave(self, seen: Forwarded) -> None:
        with self._lock:
            self._in_flight -= 1
            self._active.remove(seen)
            self._answered.append(seen.path)


@contextmanager
def counting_proxy(
    upstream: str,
    *,
    gather: int = 1,
    gather_for: float = 0.5,
    hold: tuple[str, str] | None = None,
    hold_for: float = 8.0,
) -> Iterator[CountingProxy]:
    """A proxy for the plain-HTTP registry at ``upstream`` (``HOST:PORT``).

    ``gather``: every request waits (after it is counted, before it is forwarded) until
    ``gather`` requests are in flight, or at most ``gather_for`` seconds, so that requests sent
    together are seen in flight together however loaded the machine is, and a request sent alone
    is seen alone. Keep ``gather_for`` below the client's timeout (10 s): a request that waits
    longer fails as unreachable, which is no finding about concurrency.
    ``hold``: ``(HELD, AWAITED)``: a request whose path contains HELD is not answered until one
    whose path contains AWAITED has arrived (or ``hold_for`` seconds have passed): whether the
    client sends the second while the first is unanswered, that is, without waiting for it. The
    bound is generous, since a loaded machine (CI runs two lanes on two cores) took over 2 s to
    send the awaited request of a client that does not wait; and below the client's timeout
    (10 s), since a client that waits would otherwise give up on the held request first and
    then send the awaited one, before the held one was answered.
    """
    proxy = CountingProxy(host="")
    arrived = threading.Condition()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _forward(self) -> None:
            seen = Forwarded(self.command, self.path, self.client_address[1])
            proxy._enter(seen)
            try:
                with arrived:
                    arrived.notify_all()
                    if gather > 1:
                        arrived.wait_for(lambda: proxy._in_flight >= gather, gather_for)
                    if hold is not None and hold[0] in self.path:
                        awaited = hold[1]
                        arrived.wait_for(
                            lambda: any(awaited in f.path for f in proxy.seen), hold_for
                        )
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream_conn = http.client.HTTPConnection(upstream, timeout=30)
                try:
                    upstream_conn.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream_conn.getresponse()
                    data = answer.read()
                finally:
                    upstream_conn.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                length_header = answer.getheader("content-length")
                if self.command == "HEAD" and length_header is not None:
                    self.send_header("Content-Length", length_header)
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                proxy._leave(seen)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
