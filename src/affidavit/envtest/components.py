"""What each control-plane component is started with: certificates, command lines, health probes.

:class:`~affidavit.envtest.controlplane.ControlPlane` runs processes (start, wait until healthy,
restart, stop, retry when a port was taken); this module decides, without starting anything,
what they are: the cluster's PKI (a serving CA, a client CA that also signs for the controller
manager, the admin identity in ``system:masters``, the service-account key pair), the command
line of etcd, kube-apiserver and kube-controller-manager for a control plane on 127.0.0.1 at free
ports or inside a node's network namespace at the usual ones, and how each is seen to be healthy.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from affidavit.envtest.certs import (
    CertKeyPair,
    issue_cert,
    make_ca,
    make_rsa_key_pem,
    public_key_pem,
)

SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"


@dataclass(frozen=True)
class ControlPlanePki:
    """The certificates and keys of one control plane, written to its ``pki`` directory."""

    serving_ca: CertKeyPair
    admin: CertKeyPair
    dir: Path
    ca_file: Path
    client_ca_file: Path
    client_ca_key: Path
    apiserver_crt: Path
    apiserver_key: Path
    admin_crt: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def write_pki(directory: Path, host: str) -> ControlPlanePki:
    """Fresh certificates for an apiserver reachable at ``host`` (and 127.0.0.1, and the
    ``kubernetes`` Service), written into ``directory``."""
    directory.mkdir(exist_ok=True)
    serving_ca = make_ca("affidavit-envtest-ca")
    client_ca = make_ca("affidavit-envtest-client-ca")
    apiserver = issue_cert(
        serving_ca,
        "kube-apiserver",
        ip_sans=sorted({"127.0.0.1", host, SERVICE_IP}),
        dns_sans=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
    )
    admin = issue_cert(client_ca, "affidavit-admin", client=True, organization="system:masters")
    ca_file, _ = serving_ca.write(directory, "ca")
    client_ca_file, client_ca_key = client_ca.write(directory, "client-ca")
    apiserver_crt, apiserver_key = apiserver.write(directory, "apiserver")
    admin_crt, admin_key = admin.write(directory, "admin")
    sa_key_pem = make_rsa_key_pem()
    sa_key = directory / "sa.key"
    sa_pub = directory / "sa.pub"
    sa_key.write_bytes(sa_key_pem)
    sa_key.chmod(0o600)
    sa_pub.write_bytes(public_key_pem(sa_key_pem))
    return ControlPlanePki(
        serving_ca=serving_ca,
        admin=admin,
        dir=directory,
        ca_file=ca_file,
        client_ca_file=client_ca_file,
        client_ca_key=client_ca_key,
        apiserver_crt=apiserver_crt,
        apiserver_key=apiserver_key,
        admin_crt=admin_crt,
        admin_key=admin_key,
        sa_key=sa_key,
        sa_pub=sa_pub,
    )


def etcd_argv(bin_dir: Path, workdir: Path, etcd_url: str, peer_url: str) -> list[str]:
    return [
        str(bin_dir / "etcd"),
        "--name=default",
        f"--data-dir={workdir / 'etcd-data'}",
        f"--listen-client-urls={etcd_url}",
        f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=default={peer_url}",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_argv(
    bin_dir: Path,
    pki: ControlPlanePki,
    *,
    etcd_url: str,
    host: str,
    port: int,
    in_namespace: bool,
    extra: Sequence[str] = (),
) -> list[str]:
    """kube-apiserver on 127.0.0.1 (``in_namespace`` False) or on a node's address, where
    Pods run and reach it through the ``kubernetes`` Service."""
    if not in_namespace:
        placement = [
            # No token controller runs before the controller manager; like envtest, do not
            # make Pod creation wait for the default ServiceAccount.
            "--disable-admission-plugins=ServiceAccount",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # A 127.0.0.1 endpoint for the `kubernetes` Service is invalid; don't try.
            "--endpoint-reconciler-type=none",
        ]
    else:
        placement = [  # Pods run: they get their ServiceAccount token (admission plugin on)
            "--bind-address=0.0.0.0",
            f"--advertise-address={host}",
            # Webhooks are called at their endpoints' Pod IPs, not through a ClusterIP
            # (nothing in the apiserver's own network path runs kube-proxy's rules).
            "--enable-aggregator-routing=true",
            # `kubectl logs/exec` and the apiserver's calls to the kubelet.
            f"--kubelet-client-certificate={pki.admin_crt}",
            f"--kubelet-client-key={pki.admin_key}",
            "--kubelet-preferred-address-types=InternalIP",
        ]
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={etcd_url}",
        *placement,
        f"--secure-port={port}",
        f"--cert-dir={pki.dir}",
        f"--tls-cert-file={pki.apiserver_crt}",
        f"--tls-private-key-file={pki.apiserver_key}",
        f"--client-ca-file={pki.client_ca_file}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",
        f"--service-account-issuer=https://{host}:{port}/",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        *extra,
    ]


def controller_manager_argv(
    bin_dir: Path, workdir: Path, kubeconfig: Path, pki: ControlPlanePki, port: int
) -> list[str]:
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={workdir / 'kcm-certs'}",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_file}",
        f"--cluster-signing-cert-file={pki.client_ca_file}",
        f"--cluster-signing-key-file={pki.client_ca_key}",
        "--use-service-account-credentials=true",
        "--leader-elect=false",
        "--controllers=*",
    ]


def admin_context(pki: ControlPlanePki) -> ssl.SSLContext:
    """TLS as the admin client, trusting the serving CA (the apiserver's /readyz)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    ctx.load_cert_chain(str(pki.admin_crt), str(pki.admin_key))
    return ctx


def unverified_context() -> ssl.SSLContext:
    """TLS that trusts any certificate: the controller manager's self-signed /healthz only."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def etcd_healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        return False
    return bool(json.loads(body).get("health") == "true")


def https_ok(host: str, port: int, path: str, ctx: ssl.SSLContext) -> bool:
    conn = http.client.HTTPSConnection(host, port, timeout=2, context=ctx)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    finally:
        conn.close()
