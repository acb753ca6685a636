"""A private Sigstore on loopback: Fulcio, Rekor v2, a timestamp authority and a CT log.

Keyless signing needs a certificate authority that turns an OIDC identity into a short-lived
certificate (Fulcio), a CT log that countersigns each certificate (TesseraCT, whose SCT Fulcio
embeds), a transparency log for the signature (Rekor v2, rekor-tiles) and, because a Rekor v2
entry carries no signed time, a timestamp authority. This module starts the four, built by
``scripts/sigstore-binaries``, as plain processes on 127.0.0.1 with keys it makes itself, and
writes the two files a client needs: ``trusted_root.json`` (what verifiers trust, offline) and
``signing_config.json`` (where signers go). It is the tests' private instance and the recipe an
air-gapped site follows. Each service's files stay in ``workdir``; nothing reaches past loopback.
Two caveats, both about a metrics listener no flag keeps on loopback. Released timestamp-server
v2 serves its metrics on :2112 of every interface; the script builds it patched to read that
address from ``TSA_METRICS_ADDR`` (a free port on 127.0.0.1 here), so every instance starts its
own. Released Fulcio serves its metrics on ``--metrics-port`` of every interface; the script
builds it patched to serve them on ``--host`` (127.0.0.1 here).

The identity comes from any OIDC issuer Fulcio can discover: the tests use the kube-apiserver's
own service-account issuer (Fulcio's ``kubernetes`` issuer type, audience ``sigstore``).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from affidavit.envtest.binaries import BinariesMissingError, cache_root, pinned_versions
from affidavit.envtest.process import ManagedProcess, PortTaken, StopSignal, free_port
from affidavit.envtest.sigstore_documents import signing_config_document, trusted_root_document

__all__ = ["PrivateSigstore", "SigstoreInfo", "find_sigstore_binaries"]

#: Binary name -> the versions.env pin it is built at (scripts/sigstore-binaries).
_PINS = {
    "fulcio": "FULCIO_VERSION",
    "rekor-server": "REKOR_TILES_VERSION",
    "timestamp-server": "TSA_VERSION",
    "tesseract": "TESSERACT_VERSION",
}
#: Binary name -> the mark its cache key carries after the version: it is built from a patched
#: copy of its module (the same table as scripts/sigstore-binaries' ``patch_mark``).
_PATCH_MARKS = {"timestamp-server": "metrics-addr", "fulcio": "metrics-host"}
#: How often :meth:`PrivateSigstore.start` starts the services when a port was taken meanwhile.
_START_ATTEMPTS = 4

#: The CT log's checkpoint origin (static-ct-api: a URL without scheme or port).
CT_ORIGIN = "ct.private-sigstore.invalid"


def find_sigstore_binaries() -> dict[str, Path]:
    """Each private-Sigstore binary built for its pin, or :class:`BinariesMissingError`."""
    pins = pinned_versions()
    found: dict[str, Path] = {}
    for name, pin in _PINS.items():
        key = "-".join(filter(None, (pins.get(pin, "?"), _PATCH_MARKS.get(name))))
        path = cache_root() / "tools" / f"{name}-{key}" / "bin" / name
        if not os.access(path, os.X_OK):
            raise BinariesMissingError(
                f"{name} is missing: {path}",
                hint="run `bash scripts/sigstore-binaries` (or `make sigstore-binaries`) from "
                "the repository root: it builds Fulcio, Rekor v2, the timestamp authority and "
                "TesseraCT with Go from the module proxy",
            )
        found[name] = path
    return found


@dataclass(frozen=True)
class SigstoreInfo:
    """How to reach a running private Sigstore, and the files its clients need."""

    fulcio_url: str
    rekor_url: str
    tsa_url: str
    ctlog_url: str
    #: The OIDC issuers Fulcio accepts (issuer URL -> Fulcio issuer type).
    issuers: dict[str, str]
    #: What verifiers trust: Fulcio's CA, Rekor's and the CT log's keys, the TSA's chain.
    trusted_root: Path
    #: Where signers go: Fulcio, Rekor v2, the TSA (a v0.2 signing config).
    signing_config: Path
    workdir: Path


def _chain(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback http only
        return bytes(r.read())


@dataclass
class PrivateSigstore:
    """Start with :meth:`start` (or ``with``); every process stops with :meth:`stop`.

    ``issuers`` maps each OIDC issuer URL Fulcio should accept to its Fulcio issuer type
    (``kubernetes`` for a service-account issuer; the client id is always ``sigstore``).
    ``issuer_ca_file`` is the PEM bundle Fulcio trusts when it discovers those issuers (the
    kube-apiserver's serving CA). ``extra_rekor`` starts a second Rekor log that the trusted
    root does not name (for tests of an entry from another log): its URL is ``other_rekor_url``.
    """

    workdir: Path
    issuers: dict[str, str]
    issuer_ca_file: Path | None = None
    extra_rekor: bool = False
    other_rekor_url: str = ""
    other_signing_config: Path | None = None
    _procs: list[ManagedProcess] = field(default_factory=list)
    _info: SigstoreInfo | None = None

    def __enter__(self) -> SigstoreInfo:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def info(self) -> SigstoreInfo:
        assert self._info is not None, "PrivateSigstore is not started"
        return self._info

    def stop(self) -> None:
        while self._procs:
            self._procs.pop().stop()

    def start(self) -> SigstoreInfo:
        """Start every service; a port taken between its choice and the service's bind (by
        anything else on the machine that asked the kernel for a free port, or connected out,
        meanwhile) starts them all again on fresh ports, as the control plane does."""
        bins = find_sigstore_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        attempt = 1
        while True:
            try:
                self._info = self._start(bins)
                return self._info
            except PortTaken:
                self.stop()
                if attempt == _START_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise
            for store in ("ctlog", "rekor", "rekor-other"):  # logs the next keys do not sign
                shutil.rmtree(self.workdir / store, ignore_errors=True)
            attempt += 1

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.workdir / f"{name}.log", env, cwd=self.workdir)
        self._procs.append(proc)
        return proc

    def _start(self, bins: dict[str, Path]) -> SigstoreInfo:
        wd = self.workdir
        since = datetime.now(UTC) - timedelta(minutes=5)

        tsa_url, tsa_chain = self._start_tsa(bins["timestamp-server"])

        ct_key = ec.generate_private_key(ec.SECP256R1())
        ct_port = free_port()
        ctlog_url = f"http://127.0.0.1:{ct_port}"
        fulcio_url, fulcio_chain = self._start_fulcio(bins["fulcio"], ct_port)

        (wd / "ctlog.key").write_bytes(
            ct_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        (wd / "ctlog-roots.pem").write_bytes(
            fulcio_chain[-1].public_bytes(serialization.Encoding.PEM)
        )
        ct = self._spawn(
            "tesseract",
            [str(bins["tesseract"]), f"--http_endpoint=127.0.0.1:{ct_port}",
             f"--origin={CT_ORIGIN}", f"--storage_dir={wd / 'ctlog'}",
             f"--roots_pem_file={wd / 'ctlog-roots.pem'}", f"--private_key={wd / 'ctlog.key'}",
             "--checkpoint_interval=200ms", "--batch_max_age=50ms"],
            # It pushes OpenTelemetry metrics to localhost:4318 every minute: not here.
            {"OTEL_METRIC_EXPORT_INTERVAL": "86400000",
             "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
        )  # fmt: skip
        ct.wait_until(lambda: bool(_get(f"{ctlog_url}/ct/v1/get-roots")), "it serves")

        rekor_url, rekor_key = self._start_rekor(bins["rekor-server"], "rekor")
        if self.extra_rekor:
            self.other_rekor_url, _ = self._start_rekor(bins["rekor-server"], "rekor-other")

        root = trusted_root_document(
            rekor=(rekor_url, rekor_key),
            ctlog=(ctlog_url, ct_key),
            fulcio=(fulcio_url, fulcio_chain),
            tsa=(tsa_url, tsa_chain),
            since=since,
        )
        trusted_root = wd / "trusted_root.json"
        trusted_root.write_text(json.dumps(root, indent=2))
        signing_config = wd / "signing_config.json"
        signing_config.write_text(
            json.dumps(signing_config_document(fulcio_url, rekor_url, tsa_url, since), indent=2)
        )
        if self.extra_rekor:
            self.other_signing_config = wd / "signing_config.other-log.json"
            self.other_signing_config.write_text(
                json.dumps(
                    signing_config_document(fulcio_url, self.other_rekor_url, tsa_url, since),
                    indent=2,
                )
            )
        return SigstoreInfo(
            fulcio_url=fulcio_url,
            rekor_url=rekor_url,
            tsa_url=tsa_url,
            ctlog_url=ctlog_url,
            issuers=dict(self.issuers),
            trusted_root=trusted_root,
            signing_config=signing_config,
            workdir=wd,
        )

    def _start_tsa(self, binary: Path) -> tuple[str, list[x509.Certificate]]:
        port = free_port()
        tsa = self._spawn(
            "timestamp-server",
            [str(binary), "serve", "--host=127.0.0.1", f"--port={port}",
             "--timestamp-signer=memory", "--disable-ntp-monitoring", "--log-type=prod"],
            # Its Prometheus listener (scripts/sigstore-binaries patches it to read this).
            {"TSA_METRICS_ADDR": f"127.0.0.1:{free_port()}"},
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        tsa.wait_until(lambda: bool(_get(f"{url}/api/v1/timestamp/certchain")), "it serves")
        return url, _chain(_get(f"{url}/api/v1/timestamp/certchain"))

    def _start_fulcio(self, binary: Path, ct_port: int) -> tuple[str, list[x509.Certificate]]:
        wd = self.workdir
        config = {
            "OIDCIssuers": {
                url: {"IssuerURL": url, "ClientID": "sigstore", "Type": kind}
                for url, kind in self.issuers.items()
            }
        }
        (wd / "fulcio.json").write_text(json.dumps(config, indent=2))
        port, grpc_port, metrics_port = free_port(), free_port(), free_port()
        env = {"SSL_CERT_FILE": str(self.issuer_ca_file)} if self.issuer_ca_file else None
        fulcio = self._spawn(
            "fulcio",
            [str(binary), "serve", "--ca=ephemeralca", f"--config-path={wd / 'fulcio.json'}",
             "--host=127.0.0.1", f"--port={port}", "--grpc-host=127.0.0.1",
             f"--grpc-port={grpc_port}", f"--metrics-port={metrics_port}",
             f"--legacy-unix-domain-socket={wd / 'fulcio-legacy.sock'}",
             f"--ct-log-url=http://127.0.0.1:{ct_port}",
             "--log_type=prod"],
            env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        fulcio.wait_until(lambda: bool(_get(f"{url}/api/v2/trustBundle")), "it serves")
        bundle = json.loads(_get(f"{url}/api/v2/trustBundle"))
        pems = bundle["chains"][0]["certificates"]
        return url, [x509.load_pem_x509_certificate(p.encode()) for p in pems]

    def _start_rekor(self, binary: Path, name: str) -> tuple[str, ec.EllipticCurvePrivateKey]:
        wd = self.workdir
        key = ec.generate_private_key(ec.SECP256R1())
        key_file = wd / f"{name}.key"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        port, grpc_port, metrics_port = free_port(), free_port(), free_port()
        # The checkpoint origin is the log URL's host name: sigstore-go (cosign) checks it so.
        rekor = self._spawn(
            name,
            [str(binary), "serve", f"--storage-dir={wd / name}", f"--signer-filepath={key_file}",
             "--hostname=127.0.0.1", "--http-address=127.0.0.1", f"--http-port={port}",
             "--grpc-address=127.0.0.1", f"--grpc-port={grpc_port}",
             f"--http-metrics-port={metrics_port}", "--checkpoint-interval=200ms",
             "--batch-max-age=50ms", "--log-level=warn"],
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        rekor.wait_until(lambda: b"SERVING" in _get(f"{url}/healthz"), "it serves")
        return url, key


def main(argv: list[str] | None = None) -> int:
    """``python -m affidavit.envtest.sigstore WORKDIR --issuer URL=TYPE [--issuer-ca PEM]``:
    start a private Sigstore, print where its files are, run until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m affidavit.envtest.sigstore")
    parser.add_argument("workdir", type=Path)
    parser.add_argument(
        "--issuer",
        action="append",
        required=True,
        metavar="URL=TYPE",
        help="an OIDC issuer Fulcio accepts and its type (kubernetes, email, ...)",
    )
    parser.add_argument("--issuer-ca", type=Path, help="PEM CAs for the issuers' TLS")
    args = parser.parse_args(argv)  # fmt: skip
    issuers = dict(i.rsplit("=", 1) for i in args.issuer)
    stop = StopSignal()
    with PrivateSigstore(args.workdir, issuers, issuer_ca_file=args.issuer_ca) as info:
        print(f"fulcio          {info.fulcio_url}")
        print(f"rekor           {info.rekor_url}")
        print(f"tsa             {info.tsa_url}")
        print(f"trusted root    {info.trusted_root}")
        print(f"signing config  {info.signing_config}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
