"""Tests the registry client's HTTP/1.1 connections (``registry_wire``) against the real registry,
seen through a loopback TCP relay that counts the connections made and can cut them: a fetch of
many attestations reuses a handful of kept-alive connections (at most one per parallel request);
connections the server closed while idle are replaced without an error; and ``http_proxy`` sends
plain-HTTP requests to the proxy (in absolute form, which the registry serves), unless
``no_proxy`` names the host."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from attest_support import KeyPair, attest, strip_embedded

from affidavit.attestations.fetch import fetch
from affidavit.attestations.parallel import FETCH_WORKERS
from affidavit.attestations.registry import ImageReference, RegistryClient

NewImage = Callable[..., ImageReference]


class Relay:
    """Forwards every connection made to ``host`` to ``target``; counts and can cut them."""

    def __init__(self, target: str) -> None:
        name, port = target.rsplit(":", 1)
        self.target = (name, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.accepted = 0
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.server.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            with self.lock:
                self.accepted += 1
                self.open += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every relayed connection, as a server ends idle keep-alive connections."""
        with self.lock:
            connections, self.open = self.open, []
        for s in connections:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.server.close()
        self.cut()


@pytest.fixture
def relay(registry: object) -> Iterator[Relay]:
    r = Relay(registry.host)  # type: ignore[attr-defined]
    yield r
    r.close()


def _through(image: ImageReference, relay: Relay) -> ImageReference:
    return ImageReference.parse(f"{relay.host}/{image.repository}@{image.digest}")


def test_a_fetch_reuses_kept_alive_connections(
    client: RegistryClient, new_image: NewImage, key: KeyPair, relay: Relay
) -> None:
    image = new_image()
    for i in range(24):
        attest(client, image, key, {"n": i})
    strip_embedded(client, image)  # every layer is read
    with RegistryClient() as fresh:
        found = fetch(fresh, _through(image, relay))
        assert len(found) == 48 and all(f.data is not None for f in found)
        # 4 listings, then 24 layers 8 at a time: never more connections than requests at once
        assert 1 <= relay.accepted <= FETCH_WORKERS
        before = relay.accepted
        assert len(fetch(fresh, _through(image, relay))) == 48
        assert relay.accepted == before  # the second fetch made no new connection


def test_connections_the_server_closed_are_replaced(new_image: NewImage, relay: Relay) -> None:
    image = _through(new_image(), relay)
    with RegistryClient() as fresh:
        assert fresh.resolve(image) == image.digest
        relay.cut()
        assert fresh.resolve(image) == image.digest
        assert relay.accepted == 2


def test_http_proxy_carries_plain_http_unless_no_proxy_names_the_host(
    new_image: NewImage, relay: Relay, registry: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = new_image()
    for name in ("HTTP_PROXY", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://{relay.host}")
    with RegistryClient() as proxied:
        assert proxied.resolve(image) == image.digest
    assert relay.accepted == 1
    monkeypatch.setenv("no_proxy", f"example.com,{image.registry.rsplit(':', 1)[0]}")
    with RegistryClient() as direct:
        assert direct.resolve(image) == image.digest
    assert relay.accepted == 1
