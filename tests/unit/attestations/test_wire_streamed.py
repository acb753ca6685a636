"""A request body sent as it is produced (``Streamed``), over a real loopback socket.

What a blob copied registry to registry relies on: the head declares the whole length before
the first byte, the bytes follow as they come, a producer that fails (or comes to another
length) ends the connection so the server never takes a short body for a whole one, and such a
request never rides an idle kept-alive connection, which it could not be sent again after.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from affidavit.attestations.registry_wire import Streamed, Wire


@dataclass
class Seen:
    connection: int
    head: str
    body: bytes
    whole: bool  # the body came to its Content-Length before the client stopped


@dataclass
class Server:
    """Answers every request ``201`` on loopback and records what each connection carried."""

    sock: socket.socket
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    early: bytes | None = None  # answered as soon as a head is read, then the connection closed

    @property
    def url(self) -> str:
        port = self.sock.getsockname()[1]
        return f"http://127.0.0.1:{port}/v2/x/blobs/uploads/1?digest=sha256:0"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn, self.connections), daemon=True).start()

    def _one(self, conn: socket.socket, number: int) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                text = head.decode("latin-1")
                if self.early is not None:  # a refusal before the body: answer, then hang up
                    conn.sendall(self.early)
                    self.seen.append(Seen(number, text, buffer, whole=False))
                    return
                length = next(
                    (int(line.split(":")[1]) for line in text.split("\r\n")
                     if line.lower().startswith("content-length:")),
                    0,
                )  # fmt: skip
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        self.seen.append(Seen(number, text, buffer, whole=False))
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                self.seen.append(Seen(number, text, body, whole=True))
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def server() -> Iterator[Server]:
    sock = socket.create_server(("127.0.0.1", 0))
    running = Server(sock)
    thread = threading.Thread(target=running.serve, daemon=True)
    thread.start()
    yield running
    sock.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    w = Wire(ssl.create_default_context(), env={})
    yield w
    w.close()


def _put(wire: Wire, url: str, content: bytes | Streamed) -> int:
    with wire.stream("PUT", url, headers={}, content=content, timeout=5) as r:
        r.read()
        return r.status_code


def _settled(server: Server, count: int) -> list[Seen]:
    for _ in range(6000):  # bounded (60 s), not timed: a loaded machine may take seconds
        if len(server.seen) >= count:
            break
        threading.Event().wait(0.01)
    return server.seen


def test_a_streamed_body_declares_its_length_and_sends_every_chunk(
    server: Server, wire: Wire
) -> None:
    chunks = [b"a" * 70_000, b"b" * 3, b"c" * 100_000]
    assert _put(wire, server.url, Streamed(iter(chunks), 170_003)) == 201
    [seen] = _settled(server, 1)
    assert "Content-Length: 170003" in seen.head.split("\r\n")
    assert seen.whole and seen.body == b"".join(chunks)


@pytest.mark.parametrize(
    ("chunks", "declared", "message"),
    [
        ([b"x" * 10], 20, "the body ended at 10 of the 20 bytes it declared"),
        ([b"x" * 10, b"y" * 15], 20, "the body is longer than the 20 bytes it declared"),
    ],
)
def test_a_body_of_another_length_ends_the_connection_unfinished(
    server: Server, wire: Wire, chunks: list[bytes], declared: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _put(wire, server.url, Streamed(iter(chunks), declared))
    [seen] = _settled(server, 1)
    assert not seen.whole and len(seen.body) <= declared  # never a byte past what it declared


def test_a_producer_that_fails_ends_the_connection_unfinished(server: Server, wire: Wire) -> None:
    def failing() -> Iterator[bytes]:
        yield b"x" * 1000
        raise LookupError("the source went away")

    with pytest.raises(LookupError):
        _put(wire, server.url, Streamed(failing(), 5000))
    [seen] = _settled(server, 1)
    assert (seen.whole, seen.body) == (False, b"x" * 1000)


def test_a_streamed_request_never_takes_an_idle_kept_alive_connection(
    server: Server, wire: Wire
) -> None:
    assert _put(wire, server.url, b"first") == 201
    assert _put(wire, server.url, b"second") == 201  # kept alive: the same connection
    assert _put(wire, server.url, Streamed(iter([b"third"]), 5)) == 201
    seen = _settled(server, 3)
    assert [(s.connection, s.body) for s in seen] == [(1, b"first"), (1, b"second"), (2, b"third")]


def test_an_answer_sent_before_the_body_was_read_is_heard(server: Server, wire: Wire) -> None:
    """A registry refusing an upload (413, 401, an unknown session) answers once it has the head
    and hangs up; the send then fails with a broken pipe, and the answer is what the caller
    gets, not "unreachable"."""
    refusal = b'{"errors":[{"code":"SIZE_INVALID","message":"too large"}]}'
    server.early = (
        b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(refusal), refusal)
    )
    body = Streamed(iter([b"x" * 65536] * 512), 65536 * 512)  # 32 MiB: more than any buffer
    with wire.stream("PUT", server.url, headers={}, content=body, timeout=5) as r:
        assert (r.status_code, r.read()) == (413, refusal)
    [seen] = _settled(server, 1)
    assert not seen.whole
