"""A server TLS context that picks up a rotated certificate without a restart.

The operator rotates the webhook's serving certificate before it expires by rewriting the
cert/key files (a mounted Secret). Restarting the webhook for that would drop in-flight admission
requests, so every handshake goes through ``sni_callback``, which swaps in a context loaded from
the current files whenever they change (checked at most once per ``interval``). The callback
runs for every ClientHello, with or without SNI: the apiserver dials ``https://IP`` without it.
A half-written pair fails to load; the previous context keeps serving until the pair is whole.
With a client CA (``client_auth``), every context asks for and verifies client certificates
against it, and a changed CA file is picked up like a changed certificate.

In the chart the operator (the other container of the Pod) writes the first pair a few seconds
after the Pod starts; ``wait`` lets the webhook wait for it, bounded and saying what it waits
for, instead of exiting and being restarted by the kubelet until the files appear.

``validity`` is the served certificate's notBefore and notAfter, exported as metrics: an expired
serving certificate makes the API server refuse every workload (failurePolicy Fail), and the
only warning of a renewal that stopped is a certificate that keeps getting older.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from pathlib import Path

from cryptography import x509

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


def _validity(cert: Path) -> tuple[float, float]:
    """The first certificate's notBefore and notAfter (Unix time) in the PEM file ``cert``; a file
    that changed since it loaded is read again at the next stamp check."""
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    return leaf.not_valid_before_utc.timestamp(), leaf.not_valid_after_utc.timestamp()


def _stamp(*files: Path) -> tuple[int, ...]:
    out: list[int] = []
    for f in files:
        st = f.stat()
        out += [st.st_mtime_ns, st.st_size]
    return tuple(out)


class ReloadingTLS:
    """Holds the outer context handed to the server and the current per-certificate context."""

    def __init__(
        self,
        cert: Path,
        key: Path,
        *,
        interval: float = 1.0,
        client_ca: Path | None = None,
        wait: float = 0.0,
    ) -> None:
        self.cert, self.key, self.interval, self.client_ca = cert, key, interval, client_ca
        self._files = (cert, key) if client_ca is None else (cert, key, client_ca)
        deadline = time.monotonic() + wait
        announced = 0.0
        while True:
            try:
                self._current = _load(cert, key, client_ca)
                self._stamp = _stamp(*self._files)
                self._validity = _validity(cert)
                break
            except (OSError, ssl.SSLError, ValueError) as e:
                now = time.monotonic()
                if now >= deadline:
                    what = f"the TLS certificate {cert} and key {key}"
                    if client_ca is not None:
                        what += f" and client CA {client_ca}"
                    waited = f" after waiting {wait:g}s" if wait > 0 else ""
                    raise UsageError(
                        f"cannot load {what}{waited}: {e}",
                        hint="pass --tls-cert/--tls-key with a PEM certificate and its private key"
                        + (" and --client-ca with a PEM CA bundle" if client_ca is not None else "")
                        + " (in the chart the operator container writes them)",
                    ) from e
                if now - announced >= 10.0:
                    announced = now
                    log.warning(
                        "waiting up to %.0fs more for the TLS certificate %s and key %s "
                        "(written by the operator): %s",
                        deadline - now,
                        cert,
                        key,
                        e,
                    )
                time.sleep(min(0.5, max(0.0, deadline - now)))
        if announced:
            log.info("TLS certificate %s loaded", cert)
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.reloads = 0
        self.context = _load(cert, key, client_ca)
        self.context.sni_callback = self._on_hello

    def validity(self) -> tuple[float, float]:
        """notBefore and notAfter (Unix time) of the certificate the next handshake serves."""
        self.current()
        return self._validity

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
            current = _load(self.cert, self.key, self.client_ca)
            validity = _validity(self.cert)
        except (OSError, ssl.SSLError, ValueError) as e:
            log.warning("TLS certificate changed but does not load yet (%s); keeping the old", e)
            return
        self._current, self._validity = current, validity
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.cert)

    def _on_hello(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        sslobj.context = self.current()
