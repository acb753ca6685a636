"""Small hostile "registries" on 127.0.0.1 for the tests of whom Affidavit talks to.

Each is a real HTTP server (or a socket that accepts and stalls) that behaves the way a registry
named in a hostile Pod spec might: redirect to another host, name a token realm on another
host, challenge for credentials, or never answer. Every one records what it received (method,
path, Authorization header), so a test can assert that a server was never contacted, or that it
never saw credentials meant for someone else.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [],
    }
).encode()


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str | None


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Behaviour = Callable[[Seen], Reply]


@dataclass
class HostileRegistry:
    host: str  # 127.0.0.1:PORT
    seen: list[Seen]

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@contextmanager
def hostile_registry(behaviour: Behaviour) -> Iterator[HostileRegistry]:
    """Serve ``behaviour`` on a fresh loopback port, recording every request."""
    seen: list[Seen] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            request = Seen(self.command, self.path, self.headers.get("Authorization"))
            seen.append(request)
            reply = behaviour(request)
            self.send_response(reply.status)
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_HEAD = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HostileRegistry(f"127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()


def manifest(_: Seen) -> Reply:
    """A well-behaved answer: a tiny OCI manifest for any path."""
    return Reply(200, {"Content-Type": OCI_MANIFEST}, MANIFEST)


def redirect_to(url: str) -> Behaviour:
    """Redirect every request to ``url`` + the same path."""
    return lambda req: Reply(307, {"Location": url + req.path})


def requires(authorization: str, then: Behaviour, challenge: str) -> Behaviour:
    """401 with ``challenge`` unless the request carries ``authorization``; then ``then``."""

    def answer(req: Seen) -> Reply:
        if req.authorization != authorization:
            return Reply(401, {"WWW-Authenticate": challenge})
        return then(req)

    return answer


def token(value: str) -> Behaviour:
    """A token service: any request gets ``{"token": value}``."""
    body = json.dumps({"token": value}).encode()
    return lambda _req: Reply(200, {"Content-Type": "application/json"}, body)


class StallingRegistry:
    """Accepts TCP connections and never answers (a registry that hangs), counting them."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self.host = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() above on Linux
        self._sock.close()
        for conn in self._held:
            conn.close()


@contextmanager
def stalling_registry() -> Iterator[StallingRegistry]:
    server = StallingRegistry()
    try:
        yield server
    finally:
        server.close()
