"""Fixtures for the webhook's integration tests: a CA and serving certificate, signed images in
the real registry, a policy directory, registries that hang or refuse, and a running webhook."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from admission_support import (
    Images,
    Tls,
    WebhookProcess,
    attest_provenance,
    make_signing,
    push,
    start_webhook,
    write_policies,
)

from affidavit.envtest.certs import issue_cert, make_ca
from affidavit.envtest.process import free_port


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("webhook")


@pytest.fixture(scope="module")
def tls(workdir: Path) -> Tls:
    ca = make_ca("affidavit-test-ca")
    leaf = issue_cert(ca, "affidavit-webhook", ip_sans=["127.0.0.1"], dns_sans=["localhost"])
    cert, key = leaf.write(workdir, "webhook")
    return Tls(ca, cert, key)


@pytest.fixture(scope="module")
def images(registry: object, workdir: Path) -> Images:
    host: str = registry.host  # type: ignore[attr-defined]
    signing = make_signing(workdir)
    write_policies(workdir / "policies", signing.public_pem)
    digests = {}
    for area in ("strict", "warn", "audit", "lenient", "pinned"):
        good = push(host, f"{area}/good", "1", content=f"good {area} {workdir}".encode())
        attest_provenance(host, f"{area}/good", good, signing)
        bare = push(host, f"{area}/bare", "1", content=f"bare {area} {workdir}".encode())
        digests[area] = (good, bare)
    good, bare = digests["strict"]
    return Images(f"{host}/strict/good:1", good, f"{host}/strict/bare:1", bare, host)


@pytest.fixture(scope="module")
def hanging_registry() -> Iterator[str]:
    """A TCP port that accepts connections (backlog) and never answers: a stuck registry."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield f"127.0.0.1:{s.getsockname()[1]}"
    s.close()


@pytest.fixture(scope="module")
def closed_port() -> str:
    """A loopback port nothing listens on (:func:`free_port` hands it to nobody else)."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def webhook(
    workdir: Path, tls: Tls, images: Images, hanging_registry: str, closed_port: str
) -> Iterator[WebhookProcess]:
    # The policies' globs (`*/strict/*`) name no registry, so the hosts are allow-listed.
    allowed = [
        a
        for h in (images.host, hanging_registry, closed_port)
        for a in ("--registry-allowed-host", h)
    ]
    proc = start_webhook(
        workdir,
        tls.ca.cert_pem,
        tls.cert,
        tls.key,
        args=[
            "--ledger",
            f"sqlite:///{workdir / 'ledger.db'}",
            "--policy-dir",
            str(workdir / "policies"),
            # Margins for a loaded machine: the real registry answers well within the
            # registry timeout, the hanging one never does (so it is "unreachable", not "over
            # budget"), and the ledger's commit is waited for, not buffered.
            "--budget-seconds",
            "10",
            "--registry-timeout",
            "2",
            "--ledger-wait",
            "5",
            *allowed,
        ],
    )
    yield proc
    proc.stop()
