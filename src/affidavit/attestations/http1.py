"""HTTP/1.1 framing for the registry wire: a request head written, a response read, on one socket.

Why: ``http.client`` cost about 0.2 ms of CPU per registry request on loopback (its request
builder, an ``email`` parser for the headers, a buffered file per response), three times what
the socket calls themselves cost; a cold digest in the webhook sends four requests, all on the
event loop's one core. The wire (``registry_wire``) opens the connections (TCP, TLS, a proxy's
CONNECT tunnel, whose answer is read here too) and frames requests and responses here, with what
a registry client needs: a body framed by ``Content-Length``, chunked or read to the close; no body
for HEAD, 1xx, 204 and 304; interim 1xx answers skipped; keep-alive unless the server closes.
Request targets and header fields holding control characters are refused before anything is
sent, as ``http.client`` refuses them (a redirect's ``Location`` is the server's text).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator, Mapping
from typing import overload

#: Largest response head (status line and headers) read.
MAX_HEAD = 64 * 1024
_RECV = 64 * 1024
_BAD_TARGET = re.compile("[\x00-\x20\x7f]")
_BAD_FIELD = re.compile("[\x00-\x1f\x7f]")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class BadResponse(Exception):
    """The server answered something that is not an HTTP/1.1 response."""


class NoAnswer(ConnectionError):
    """The connection ended before a status line arrived (a kept-alive one the server closed)."""


class BadRequest(ValueError):
    """A request target or header field holds a control character: nothing was sent."""


class Headers:
    """A response's header fields, looked up case-insensitively (the first of repeated ones)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields  # lower-case names

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        return self._fields.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields.items())


def request_head(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | int | None
) -> bytes:
    """The request line and header fields of one request (``Host`` first, then ``headers``);
    ``body`` is the body, or its length when it is sent after the head as it is produced.

    Raises:
        BadRequest: a control character in the target or a header field.
    """
    if _BAD_TARGET.search(target) or _BAD_TARGET.search(method):
        raise BadRequest(f"invalid characters in the request target {target!r}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if _BAD_FIELD.search(name) or ":" in name or _BAD_FIELD.search(value):
            raise BadRequest(f"invalid characters in the header field {name!r}")
        lines.append(f"{name}: {value}")
    if isinstance(body, int):
        lines.append(f"Content-Length: {body}")
    elif body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


class Reader:
    """One response read from ``sock``: ``begin`` reads its head, ``chunks`` its body.

    ``reusable`` after the body is read to its end: the connection may carry another request
    (not when the server sent more than the response: the next answer could not be told apart).
    """

    def __init__(self, sock: socket.socket, method: str) -> None:
        self._sock = sock
        self._method = method
        self._buffer = b""
        self.status = 0
        self.headers = Headers({})
        self.length: int | None = None  # body bytes left, when framed by Content-Length
        self._chunked = False
        self._to_close = False  # the body runs until the server closes
        self.done = False  # the whole body has been read
        self.keep_alive = False

    @property
    def unread(self) -> bool:
        """Whether bytes past what was read so far have arrived (buffered, not yet handed out)."""
        return bool(self._buffer)

    @property
    def reusable(self) -> bool:
        """Read to its end, kept alive, and nothing unasked-for after it."""
        return self.done and self.keep_alive and not self._buffer

    def _recv(self) -> bytes:
        return self._sock.recv(_RECV)

    def begin(self) -> None:
        """Read the status line and the header fields (interim 1xx answers skipped).

        Raises:
            NoAnswer: the connection ended before any byte of a status line.
            BadResponse: not an HTTP/1.1 response, or a head over ``MAX_HEAD``.
            OSError: the socket failed or timed out.
        """
        while True:
            head = self._read_head()
            lines = head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            code = rest[:3]
            # ASCII digits only: a latin-1 '²' is a digit to str.isdigit() and not to int().
            ok = len(code) == 3 and code.isascii() and code.isdigit()
            if not version.startswith("HTTP/1.") or not ok:
                raise BadResponse(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
            fields: dict[str, str] = {}
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if not colon or not name or name != name.strip():
                    raise BadResponse(f"malformed header field: {line[:80]!r}")
                fields.setdefault(name.lower(), value.strip(" \t"))
            status = int(code)
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer: the final one follows
            break
        self.status, self.headers = status, Headers(fields)
        connection = fields.get("connection", "").lower()
        self.keep_alive = version == "HTTP/1.1" and "close" not in connection
        if self._method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self.length = 0
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in fields:
            length = fields["content-length"]
            if not (length.isascii() and length.isdigit()):
                raise BadResponse(f"invalid Content-Length {length[:40]!r}")
            self.length = int(length)
        else:
            self._to_close = True
            self.keep_alive = False
        self.done = self.length == 0

    def _read_head(self) -> bytes:
        start = 0
        while True:
            end = self._buffer.find(b"\r\n\r\n", start)
            if end >= 0:
                head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
                return head
            if len(self._buffer) > MAX_HEAD:
                raise BadResponse(f"the response head is over {MAX_HEAD} bytes")
            start = max(0, len(self._buffer) - 3)
            data = self._recv()
            if not data:
                if self._buffer:
                    raise BadResponse("the connection ended inside the response head")
                raise NoAnswer("the server closed the connection without answering")
            self._buffer += data

    def chunks(self) -> Iterator[bytes]:
        """The body, as it arrives (de-chunked).

        Raises:
            BadResponse: the body ends early or its chunks are malformed.
            OSError: the socket failed or timed out.
        """
        if self.done:
            return
        if self._chunked:
            yield from self._dechunked()
        elif self._to_close:
            if self._buffer:
                data, self._buffer = self._buffer, b""
                yield data
            while data := self._recv():
                yield data
        else:
            assert self.length is not None
            while self.length > 0:
                data = self._take(self.length)
                self.length -= len(data)
                yield data
        self.done = True

    def _take(self, most: int) -> bytes:
        """Up to ``most`` bytes, buffered first (at least one byte)."""
        if not self._buffer:
            self._buffer = self._recv()
            if not self._buffer:
                raise BadResponse("the connection ended inside the response body")
        data, self._buffer = self._buffer[:most], self._buffer[most:]
        return data

    def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise BadResponse("a chunk line is too long")
            data = self._recv()
            if not data:
                raise BadResponse("the connection ended inside a chunked body")
            self._buffer += data
        line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        return line

    def _dechunked(self) -> Iterator[bytes]:
        while True:
            size_text = self._line().split(b";", 1)[0].strip(b" \t")
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise BadResponse(f"invalid chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                while self._line():  # trailer fields, up to the empty line
                    pass
                return
            left = size
            while left > 0:
                data = self._take(left)
                left -= len(data)
                yield data
            if self._line():
                raise BadResponse("a chunk does not end with CRLF")
