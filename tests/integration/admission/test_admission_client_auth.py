"""Client-certificate authentication of the webhook (``--client-ca``, ``--client-name``), over real
TLS against a real ``affidavit webhook serve`` process.

Only a certificate that the client CA signed and that names the expected identity reaches
``/validate`` (or any other path but the probes): no certificate, a certificate naming someone
else, or one without the clientAuth usage gets 401 with the exact reason and leaves no ledger row;
a certificate from another CA never completes the handshake. ``/healthz``, ``/readyz`` and
``/metrics`` answer without a certificate (the kubelet's probes have none). The e2e test
``tests/e2e/admission/test_e2e_admission_client_auth.py`` drives the same server from the
kube-apiserver itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from admission_support import Images, Tls, WebhookProcess, review, start_webhook

from affidavit.envtest import wait_for
from affidavit.envtest.certs import CertKeyPair, issue_cert, make_ca
from affidavit.ledger import Ledger

APISERVER = "kube-apiserver-webhook-client"
FIX = (
    "fix: give the kube-apiserver that certificate for this webhook's host in its "
    "AdmissionConfiguration (WebhookAdmissionConfiguration kubeConfigFile)"
)


def refusal(path: str, found: str) -> str:
    return (
        f"unauthenticated request to {path}: found {found}; expected a client certificate signed "
        f"by the webhook's client CA whose subject CN or DNS name is {APISERVER}; {FIX}"
    )


@pytest.fixture(scope="module")
def client_ca() -> CertKeyPair:
    return make_ca("affidavit-webhook-client-ca")


@pytest.fixture(scope="module")
def authn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("webhook-authn")


@pytest.fixture(scope="module")
def guarded(
    authn_dir: Path, tls: Tls, images: Images, workdir: Path, client_ca: CertKeyPair
) -> Iterator[WebhookProcess]:
    ca_file, _ = client_ca.write(authn_dir, "client-ca")
    hook = start_webhook(
        authn_dir,
        tls.ca.cert_pem,
        tls.cert,
        tls.key,
        args=[
            "--ledger", f"sqlite:///{authn_dir / 'ledger.db'}",
            "--policy-dir", str(workdir / "policies"),
            "--registry-allowed-host", images.host,  # the policies name no registry
            "--client-ca", str(ca_file),
            "--client-name", APISERVER,
        ],
    )  # fmt: skip
    yield hook
    hook.stop()


def _client(tls: Tls, directory: Path, pair: CertKeyPair | None, name: str) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    if pair is not None:
        cert, key = pair.write(directory, name)
        ctx.load_cert_chain(str(cert), str(key))
    return httpx.Client(verify=ctx, timeout=30)


def _post(client: httpx.Client, hook: WebhookProcess, body: dict[str, object]) -> httpx.Response:
    return client.post(
        f"{hook.url}/validate",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )


def _rows(authn_dir: Path) -> list[str]:
    return [r.id for r in Ledger(f"sqlite:///{authn_dir / 'ledger.db'}").query(limit=None)]


def test_the_apiservers_certificate_is_judged_and_recorded(
    guarded: WebhookProcess, authn_dir: Path, tls: Tls, images: Images, client_ca: CertKeyPair
) -> None:
    apiserver = issue_cert(client_ca, APISERVER, client=True)
    with _client(tls, authn_dir, apiserver, "apiserver") as client:
        r = _post(client, guarded, review(images.good, uid="u-authn-ok"))
    assert r.status_code == 200
    response = r.json()["response"]
    assert response["allowed"] is True
    assert response["auditAnnotations"]["decision"] in _rows(authn_dir)


def test_a_dns_san_names_the_client_too(
    guarded: WebhookProcess, authn_dir: Path, tls: Tls, images: Images, client_ca: CertKeyPair
) -> None:
    by_san = issue_cert(client_ca, "apiserver-1", client=True, dns_sans=[APISERVER])
    with _client(tls, authn_dir, by_san, "by-san") as client:
        r = _post(client, guarded, review(images.good, uid="u-authn-san"))
    assert r.status_code == 200
    assert r.json()["response"]["allowed"] is True


@pytest.mark.parametrize("path", ["/validate", "/mutate", "/anything"])
def test_no_certificate_gets_401_and_leaves_no_trace(
    guarded: WebhookProcess, authn_dir: Path, tls: Tls, images: Images, path: str
) -> None:
    before = _rows(authn_dir)
    refused = guarded.metric("affidavit_unauthenticated_requests_total")
    forged = review(images.bare, uid="u-forged", namespace="kube-system", name="forged")
    with _client(tls, authn_dir, None, "none") as client:
        r = client.post(f"{guarded.url}{path}", content=json.dumps(forged).encode())
    assert r.status_code == 401
    assert r.json() == {"error": refusal(path, "no client certificate")}
    assert _rows(authn_dir) == before
    assert guarded.metric("affidavit_unauthenticated_requests_total") == refused + 1


@pytest.mark.parametrize(
    ("cn", "extra", "found"),
    [
        ("alice", {}, "client certificate CN=alice"),
        ("system:kube-controller-manager", {"organization": "system:masters"},
         "client certificate CN=system:kube-controller-manager,O=system:masters"),
        ("someone", {"dns_sans": ["evil.example"]},
         "client certificate CN=someone (names: someone, evil.example)"),
    ],
)  # fmt: skip
def test_a_certificate_naming_someone_else_gets_401(
    guarded: WebhookProcess,
    authn_dir: Path,
    tls: Tls,
    images: Images,
    client_ca: CertKeyPair,
    cn: str,
    extra: dict[str, object],
    found: str,
) -> None:
    before = _rows(authn_dir)
    other = issue_cert(client_ca, cn, client=True, **extra)  # type: ignore[arg-type]
    with _client(tls, authn_dir, other, "other") as client:
        r = _post(client, guarded, review(images.good, uid="u-other"))
    assert r.status_code == 401
    assert r.json() == {"error": refusal("/validate", found)}
    assert _rows(authn_dir) == before


@pytest.mark.parametrize("which", ["another CA", "server-only usage"])
def test_a_certificate_the_ca_did_not_issue_for_clients_fails_the_handshake(
    guarded: WebhookProcess,
    authn_dir: Path,
    tls: Tls,
    images: Images,
    client_ca: CertKeyPair,
    which: str,
) -> None:
    before = _rows(authn_dir)
    if which == "another CA":
        pair = issue_cert(make_ca("attacker-ca"), APISERVER, client=True)
    else:
        pair = issue_cert(client_ca, APISERVER)  # serverAuth only
    with (
        _client(tls, authn_dir, pair, "bad") as client,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        _post(client, guarded, review(images.good, uid="u-bad"))
    assert _rows(authn_dir) == before


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_and_metrics_need_no_certificate(
    guarded: WebhookProcess, authn_dir: Path, tls: Tls, path: str
) -> None:
    with _client(tls, authn_dir, None, "none") as client:
        assert client.get(f"{guarded.url}{path}").status_code == 200


def test_a_client_ca_without_an_expected_name_is_refused(authn_dir: Path, tls: Tls) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "affidavit.cli.main", "webhook", "serve",
            "--tls-cert", str(tls.cert), "--tls-key", str(tls.key),
            "--cluster-name", "c", "--region", "r", "--ledger", "",
            "--policy-dir", str(authn_dir), "--client-ca", str(authn_dir / "client-ca.crt"),
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: a client CA without an expected client name would admit every certificate "
        "that CA signed\n"
        "  hint: name the identity the kube-apiserver presents: --client-name CN (the subject CN "
        "or a DNS SAN of its webhook client certificate)\n"
    )


def _raw(hook: WebhookProcess, authn_dir: Path, data: bytes) -> bytes:
    """``data`` sent as it is over TLS (no certificate); what comes back before the close."""
    url = httpx.URL(hook.url)
    ctx = ssl.create_default_context(cafile=str(authn_dir / "ca.pem"))
    with (
        socket.create_connection((url.host, url.port), timeout=30) as sock,
        ctx.wrap_socket(sock, server_hostname=url.host) as tls_sock,
    ):
        with contextlib.suppress(OSError):  # the server may close before it has read it all
            tls_sock.sendall(data)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := tls_sock.recv(65536):
                answer += chunk
        return answer


@pytest.mark.parametrize(
    "head",
    [
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: w\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: w\r\nX-Big: " + b"b" * 200_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: w\r\n" + b"X-Many: c\r\n" * 20_000 + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: w\r\nX-Endless: " + b"d" * 3_000_000,  # never ends
    ],
    ids=["target", "header", "headers", "unfinished"],
)
def test_an_oversized_request_head_is_refused_and_the_webhook_stays_up(
    guarded: WebhookProcess, authn_dir: Path, tls: Tls, head: bytes
) -> None:
    """httptools sets no limit on a request's target or headers (uvicorn grows the target by
    concatenation, quadratically): one unauthenticated connection held the event loop and
    megabytes per request. Now a head past its limits gets 400 and a closed connection."""
    with _client(tls, authn_dir, None, "none") as client:  # writes ca.pem for _raw
        assert client.get(f"{guarded.url}/healthz").status_code == 200
    answer = _raw(guarded, authn_dir, head)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    with _client(tls, authn_dir, None, "none") as client:
        assert client.get(f"{guarded.url}/healthz").status_code == 200


def test_a_refused_path_cannot_forge_a_line_of_the_log(
    guarded: WebhookProcess, authn_dir: Path, tls: Tls
) -> None:
    """The refusal's log line named the (percent-decoded) path as it came: a newline in it
    began a line of the caller's choosing."""
    forged = "2099-01-01 00:00:00 INFO affidavit.admission: policy index sha256:forged loaded"
    with _client(tls, authn_dir, None, "none") as client:
        r = client.post(f"{guarded.url}/x%0a{forged.replace(' ', '%20')}", content=b"{}")
    assert r.status_code == 401
    lines = guarded.log.read_text(errors="replace").splitlines()
    wait_for(lambda: any("refused POST /x" in line for line in guarded.log.read_text().splitlines()),
             "the refusal logged")  # fmt: skip
    lines = guarded.log.read_text(errors="replace").splitlines()
    assert not any(line.startswith("2099-01-01") for line in lines)
    assert any(r"refused POST /x\n2099-01-01" in line for line in lines)
