"""Only the kube-apiserver can ask the webhook for a decision (client-certificate authentication).

A control plane of its own, started with ``--admission-control-config-file``: its
AdmissionConfiguration gives the ValidatingAdmissionWebhook and MutatingAdmissionWebhook plugins
a kubeconfig with a client certificate for exactly this webhook's host (``127.0.0.1:PORT``), and
the webhook runs with ``--client-ca``/``--client-name``. A Pod created through the apiserver is
judged (admitted or refused, recorded as asked by the authenticated apiserver); a direct POST to
``/validate`` without a client certificate gets 401 and leaves no ledger row and no Event; even
the cluster-admin's client certificate (another CA) never gets a TLS connection; the probes
stay open.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from admission_e2e_support import (
    CLUSTER,
    HOME_REGION,
    Releases,
    apply_and_sync,
    latest,
    pod,
    policy,
    refused,
)

from affidavit.demo.stack import ClusterStack, StackSettings
from affidavit.envtest import free_port, wait_for
from affidavit.ledger import Ledger
from affidavit.policy.decision import Caller
from control_planes import started_control_plane

SYSTEM = "affidavit-e2e-authn"
NS = "adm-authn"
POLICY = "adm-authn-baseline"
APISERVER = "kube-apiserver-webhook-client"


@pytest.fixture(scope="module")
def stack(releases: Releases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-authn")
    port = free_port()  # the apiserver reads the webhook's host:port once, at start
    with started_control_plane(
        work / "control-plane",
        with_controller_manager=False,
        webhook_client_hosts=[f"127.0.0.1:{port}"],
    ) as info:
        settings = StackSettings(CLUSTER, HOME_REGION, releases.registry_host)
        with ClusterStack(
            info, work / "stack", settings, namespace=SYSTEM, webhook_configuration=SYSTEM,
            webhook_port=port,
        ) as running:  # fmt: skip
            running.kubectl("create", "namespace", NS)
            apply_and_sync(running, policy(POLICY, releases.registry_host, releases.public_pem))
            yield running
            running.kubectl("delete", "validatingwebhookconfiguration", SYSTEM)


def _rows(stack: ClusterStack) -> list[str]:
    ledger = Ledger(stack.ledger_url)
    try:
        return [r.id for r in ledger.query(limit=None)]
    finally:
        ledger.close()


def _client(stack: ClusterStack, cert: tuple[Path, Path] | None = None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(stack.cert_dir / "ca.crt"))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx.Client(verify=ctx, timeout=30)


def _metric(stack: ClusterStack, name: str) -> float:
    with _client(stack) as client:
        text = client.get(f"https://127.0.0.1:{stack.webhook_port}/metrics").text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def _forged(image: str) -> dict[str, Any]:
    """What an attacker who reaches the Service sends: a review of a Pod that does not exist."""
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "forged", "namespace": NS},
        "spec": {"containers": [{"name": "api", "image": image}]},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-00000000f0f0",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": NS,
            "name": "forged",
            "userInfo": {"username": "mallory"},
            "object": obj,
        },
    }


def _denial_events(stack: ClusterStack) -> list[dict[str, Any]]:
    out = stack.kubectl(
        "get", "events", "-n", NS, "--field-selector", "reason=AffidavitDenied", "-o", "json"
    ).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def test_the_control_plane_presents_a_certificate_for_the_webhook_host(
    stack: ClusterStack,
) -> None:
    client = stack.cp.webhook_client
    assert client is not None
    assert client.hosts == (f"127.0.0.1:{stack.webhook_port}",)
    assert client.name == APISERVER


def test_pod_created_through_the_apiserver_is_judged(
    stack: ClusterStack, releases: Releases
) -> None:
    stack.apply(pod("reviewed", NS, releases.reviewed.image))
    admitted = latest(stack, NS, "Pod", "reviewed")
    assert admitted.outcome == "allowed"
    assert admitted.snapshot is not None
    # The decision records that the caller was the authenticated kube-apiserver, and that the
    # AI-touched image had an independent approval of its final revision.
    assert admitted.snapshot.caller == Caller(authenticated=True, identity=f"CN={APISERVER}")
    (image,) = admitted.snapshot.images
    assert (image.ai_touched, image.reviewed) == (True, True)
    decision = refused(stack, stack.apply(pod("late", NS, releases.late.image), check=False))
    assert (decision.kind, decision.name, decision.namespace) == ("Pod", "late", NS)
    assert _metric(stack, "affidavit_unauthenticated_requests_total") == 0


def test_direct_post_without_a_certificate_gets_401_and_leaves_no_trace(
    stack: ClusterStack, releases: Releases
) -> None:
    before = _rows(stack)
    url = f"https://127.0.0.1:{stack.webhook_port}/validate"
    with _client(stack) as client:
        r = client.post(url, content=json.dumps(_forged(releases.late.image)).encode())
    assert r.status_code == 401
    assert r.json() == {
        "error": "unauthenticated request to /validate: found no client certificate; expected a "
        "client certificate signed by the webhook's client CA whose subject CN or DNS name is "
        f"{APISERVER}; fix: give the kube-apiserver that certificate for this webhook's host in "
        "its AdmissionConfiguration (WebhookAdmissionConfiguration kubeConfigFile)"
    }
    # Even the cluster-admin's certificate (the cluster's client CA) gets no TLS connection.
    admin = (stack.cp.client_cert, stack.cp.client_key)
    with (
        _client(stack, admin) as client,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        client.post(url, content=json.dumps(_forged(releases.late.image)).encode())
    assert _rows(stack) == before
    assert _metric(stack, "affidavit_unauthenticated_requests_total") == 1

    # No Event either: a real denial made afterwards gets its Event (the operator follows the
    # ledger in order), and still no Event names the forged Pod.
    after = refused(stack, stack.apply(pod("after-forgery", NS, releases.late.image), check=False))
    wait_for(
        lambda: any(after.id in e["message"] for e in _denial_events(stack)),
        "the AffidavitDenied Event of the denial made after the forged request",
    )
    assert [e for e in _denial_events(stack) if e["involvedObject"]["name"] == "forged"] == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_stay_reachable_without_a_certificate(stack: ClusterStack, path: str) -> None:
    with _client(stack) as client:
        assert client.get(f"https://127.0.0.1:{stack.webhook_port}{path}").status_code == 200
