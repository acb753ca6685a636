"""Tests the registry wire's HTTP/1.1 framing (``http1``) over a real socket pair: bodies framed by
Content-Length, chunks or the close; no body for HEAD, 204 and 304; interim answers skipped;
keep-alive only when the server allows it; malformed answers and control characters refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from affidavit.attestations.http1 import (
    BadRequest,
    BadResponse,
    NoAnswer,
    Reader,
    request_head,
)

Pair = tuple[socket.socket, socket.socket]


@pytest.fixture
def pair() -> Iterator[Pair]:
    a, b = socket.socketpair()
    a.settimeout(5)
    yield a, b
    a.close()
    b.close()


def answer(
    pair: Pair, data: bytes, method: str = "GET", close: bool = False
) -> tuple[Reader, bytes]:
    client, server = pair
    server.sendall(data)
    if close:
        server.shutdown(socket.SHUT_WR)
    reader = Reader(client, method)
    reader.begin()
    return reader, b"".join(reader.chunks())


def test_a_body_framed_by_content_length_leaves_the_connection_reusable(pair: Pair) -> None:
    reader, body = answer(
        pair, b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert (reader.status, body, reader.headers.get("content-type")) == (200, b"hello", "a/b")
    assert "CONTENT-TYPE" in reader.headers and reader.reusable


def test_a_second_response_on_the_same_connection_is_read_after_the_first(pair: Pair) -> None:
    client, server = pair
    server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab")
    first = Reader(client, "GET")
    first.begin()
    assert b"".join(first.chunks()) == b"ab"
    server.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    second = Reader(client, "GET")
    second.begin()
    assert (second.status, b"".join(second.chunks()), second.reusable) == (404, b"", True)


def test_a_chunked_body_is_joined_and_its_trailers_skipped(pair: Pair) -> None:
    reader, body = answer(
        pair,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    )
    assert body == b"hello world" and reader.reusable


def test_bytes_after_the_body_make_the_connection_unfit_for_another_request(pair: Pair) -> None:
    reader, body = answer(pair, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK")
    assert body == b"ok" and not reader.reusable


def test_a_body_without_length_runs_to_the_close_and_is_not_kept(pair: Pair) -> None:
    reader, body = answer(pair, b"HTTP/1.1 200 OK\r\n\r\nall of it", close=True)
    assert body == b"all of it" and not reader.reusable


def test_head_and_interim_answers_carry_no_body(pair: Pair) -> None:
    reader, body = answer(
        pair,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 401\r\n\r\n",
        method="HEAD",
    )
    assert (reader.status, body, reader.headers.get("content-length")) == (200, b"", "401")
    assert reader.reusable


def test_connection_close_is_honoured(pair: Pair) -> None:
    reader, _ = answer(pair, b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    assert reader.status == 204 and not reader.reusable


def test_a_connection_ended_before_the_status_line_is_no_answer(pair: Pair) -> None:
    with pytest.raises(NoAnswer):
        answer(pair, b"", close=True)


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    ],
)
def test_malformed_answers_are_refused(pair: Pair, data: bytes) -> None:
    with pytest.raises(BadResponse):
        answer(pair, data, close=True)


def test_control_characters_in_a_target_or_header_are_refused_before_sending() -> None:
    with pytest.raises(BadRequest):
        request_head("GET", "/v2/x\r\nEvil: 1", "h", {}, None)
    with pytest.raises(BadRequest):
        request_head("GET", "/v2/x", "h", {"Authorization": "Bearer a\r\nEvil: 1"}, None)
    head = request_head("POST", "/v2/x", "h:5000", {"Accept": "*/*"}, b"")
    assert (
        head == b"POST /v2/x HTTP/1.1\r\nHost: h:5000\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n"
    )
