"""A server TLS context that picks up a rotated certificate without a restart.

The operator rotates the webhook's serving certificate before it expires by rewriting the
cert/key files (a mounted Secret). Restarting the webhook for that would drop in-flight admission
requests, so every handshake goes through ``sni_callback``, which swaps in a context loaded from
the current files whenever they change (checked at most once per ``interval``). The callback
runs for every ClientHello, with or without SNI: the apiserver dials ``https://IP`` without it.
A half-written pair fails to load; the previous context keeps serving until the pair is whole.
With a client CA (``client_auth``), every context asks for and verifies client certificates
against it, and a changed CA file is picked up like a changed certificate.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from pathlib import Path

from affidavit.admission.client_auth import server_verifies_clients
from affidavit.errors import UsageError

log = logging.getLogger("affidavit.admission")


def _load(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        server_verifies_clients(ctx, client_ca)
    return ctx


def _stamp(*files: Path) -> tuple[int, ...]:
    out: list[int] = []
    for f in files:
        st = f.stat()
        out += [st.st_mtime_ns, st.st_size]
    return tuple(out)


class ReloadingTLS:
    """Holds the outer context handed to the server and the current per-certificate context."""

    def __init__(
        self, cert: Path, key: Path, *, interval: float = 1.0, client_ca: Path | None = None
    ) -> None:
        self.cert, self.key, self.interval, self.client_ca = cert, key, interval, client_ca
        self._files = (cert, key) if client_ca is None else (cert, key, client_ca)
        try:
            self._current = _load(cert, key, client_ca)
            self._stamp = _stamp(*self._files)
        except (OSError, ssl.SSLError) as e:
            what = f"the TLS certificate {cert} and key {key}"
            if client_ca is not None:
                what += f" and client CA {client_ca}"
            raise UsageError(
                f"cannot load {what}: {e}",
                hint="pass --tls-cert/--tls-key with a PEM certificate and its private key"
                + (" and --client-ca with a PEM CA bundle" if client_ca is not None else ""),
            ) from e
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.reloads = 0
        self.context = _load(cert, key, client_ca)
        self.context.sni_callback = self._on_hello

    def current(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked >= self.interval:
            with self._lock:
                self._checked = now
                self._maybe_reload()
        return self._current

    def _maybe_reload(self) -> None:
        try:
            stamp = _stamp(*self._files)
        except OSError as e:
            log.error("TLS files unreadable, keeping the current certificate: %s", e)
            return
        if stamp == self._stamp:
            return
        try:
            self._current = _load(self.cert, self.key, self.client_ca)
        except (OSError, ssl.SSLError) as e:
            log.warning("TLS certificate changed but does not load yet (%s); keeping the old", e)
            return
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.cert)

    def _on_hello(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        sslobj.context = self.current()
