"""A control plane whose service proxy can reach the webhook: both inside a network namespace.

The kube-apiserver refuses Endpoints on loopback or link-local addresses (``ValidateEndpointIP``)
and proxies to a Service only at an address that is a Pod's IP (``isValidAddress`` in the
Service storage), so the webhook of the other e2e tests (on 127.0.0.1) cannot be reached
through ``services/proxy``. Here etcd, kube-apiserver, kube-controller-manager and the webhook
run inside network, mount and PID namespaces of their own (``affidavit.envtest.Namespaces``,
address 10.89.0.1 on a bridge that leads nowhere); the tests reach the apiserver through a
relay on the host's 127.0.0.1, as a laptop with a kubeconfig would. The webhook's Service has
no selector: its Endpoints name a Pod object whose status carries the webhook's address, the
way a kubelet would report it. The apiserver presents its client certificate to the webhook,
which demands it for /validate (``webhook.clientAuth``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from affidavit.attestations.keys import generate_key_pair
from affidavit.demo.stack import webhook_configurations
from affidavit.envtest import (
    BinariesMissingError,
    ControlPlane,
    find_binaries,
    pinned_versions,
    wait_for,
)
from affidavit.envtest.certs import issue_cert, make_ca
from affidavit.envtest.namespaces import Namespaces
from affidavit.envtest.process import ManagedProcess
from affidavit.ledger import Ledger
from affidavit.policy import PolicyIndex
from affidavit.policy.crds import render_all

IP = "10.89.0.1"
PORT = 8443
SYSTEM = "affidavit-system"
SERVICE = "affidavit"  # the chart's fullname for release "affidavit"
REGISTRY = f"{IP}:5999"  # nothing listens: the policy's registry is unavailable
CHART = Path(__file__).resolve().parents[3] / "charts" / "affidavit"

POLICY = """\
apiVersion: affidavit.dev/v1alpha1
kind: AccountabilityPolicy
metadata: {name: shop-baseline}
spec:
  mode: Enforce
  match: {images: ["%s/acme/*"]}
  signers: {keys: [{name: ci, publicKey: "%s"}]}
  require: {provenance: {required: true}}
"""


@dataclass(frozen=True)
class ProxiedCluster:
    """The control plane seen from the host, and the webhook behind its Service."""

    workdir: Path
    kubeconfig: Path  # admin (system:masters), through the relay
    kubectl_bin: Path
    ledger_url: str
    webhook: ManagedProcess
    namespaces: Namespaces
    policy_file: Path

    def deploy(self, name: str, image: str) -> subprocess.CompletedProcess[str]:
        """Apply a one-container Deployment in namespace shop (not checked: it may be denied)."""
        self.kubectl("create", "namespace", "shop", check=False)
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "app", "image": image}]}},
            },
        }  # fmt: skip
        return self.kubectl("apply", "-f", "-", input=json.dumps(deployment), check=False)

    def denied(self, name: str) -> str:
        """Apply a Deployment the policy refuses; the decision id from the denial."""
        got = self.deploy(name, f"{REGISTRY}/acme/{name}:1")
        assert got.returncode != 0, got.stdout
        found = re.search(
            r"Affidavit denied Deployment/\S+ in namespace shop \(decision (\S+)\)", got.stderr
        )
        assert found, got.stderr
        decision_id = found.group(1)
        # answered is not yet recorded on a loaded machine: past --ledger-wait the decision
        # waits in the webhook's buffer, flushed just after
        ledger = Ledger(self.ledger_url, read_only=True)
        try:
            wait_for(lambda: ledger.get(decision_id), f"decision {decision_id} in the ledger")
        finally:
            ledger.close()
        return decision_id

    def reader(self, name: str) -> Path:
        """A person bound to the chart's ClusterRole affidavit-decision-reader, and nothing else."""
        kubeconfig = self.user(name)
        self.kubectl("create", "clusterrolebinding", f"{name}-reads-decisions",
                     "--clusterrole=affidavit-decision-reader",
                     f"--serviceaccount=team:{name}", check=False)  # fmt: skip
        return kubeconfig

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.kubectl_bin), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)}: {proc.stderr}\n{self.webhook.log_tail()}"
            )
        return proc

    def apply(self, obj: Mapping[str, object]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def user(self, name: str, namespace: str = "team") -> Path:
        """A kubeconfig holding only a ServiceAccount token (a person's identity, for RBAC)."""
        self.kubectl("create", "namespace", namespace, check=False)
        self.kubectl("create", "serviceaccount", name, "-n", namespace, check=False)
        token = self.kubectl("create", "token", name, "-n", namespace, "--duration=2h").stdout
        admin = yaml.safe_load(self.kubeconfig.read_text())
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": admin["clusters"],
            "users": [{"name": name, "user": {"token": token.strip()}}],
            "contexts": [{"name": name, "context": {"cluster": admin["clusters"][0]["name"],
                                                    "user": name}}],
            "current-context": name,
        }  # fmt: skip
        path = self.workdir / f"{name}.kubeconfig"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)
        return path


def _chart_reader_role() -> dict[str, object]:
    """The chart's ClusterRole affidavit-decision-reader, rendered by helm for release affidavit."""
    bin_dir = find_binaries()
    rendered = subprocess.run(
        [str(bin_dir / "helm"), "template", "affidavit", str(CHART), "--namespace", SYSTEM,
         "--kube-version", pinned_versions()["K8S_VERSION"],
         "--show-only", "templates/rbac.yaml"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (role,) = [
        d for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("decision-reader")
    ]  # fmt: skip
    return dict(role)


def _host_kubeconfig(inner: Path, outer: Path, server: str) -> None:
    config = yaml.safe_load(inner.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = server
    fd = os.open(outer, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)


@contextmanager
def proxied_cluster(wd: Path) -> Iterator[ProxiedCluster]:
    """Start it all in ``wd``; stop it all on exit."""
    try:
        bin_dir = find_binaries()
    except BinariesMissingError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(str(e))
        pytest.skip(str(e))
    with Namespaces(wd / "ns", address=f"{IP}/24", service_cidr="10.0.0.0/24") as ns:
        plane = ControlPlane(
            wd / "cp", binaries=bin_dir, namespace=ns, webhook_client_hosts=(f"{IP}:{PORT}",)
        )
        with plane as inner:
            kubeconfig = wd / "admin.kubeconfig"
            _host_kubeconfig(
                inner.kubeconfig, kubeconfig, f"https://127.0.0.1:{ns.forward(IP, 6443)}"
            )
            ca = make_ca("decisions-test-ca")
            cert, key = issue_cert(ca, SERVICE, ip_sans=[IP]).write(wd / "tls", "tls")
            policies = wd / "policies"
            policies.mkdir()
            signer = wd / "ci.pub"
            signer.write_bytes(generate_key_pair("ecdsa-p256")[1])
            (policies / "policy.yaml").write_text(
                POLICY % (REGISTRY, signer.read_text().replace("\n", "\\n"))
            )
            ledger_url = f"sqlite:///{wd / 'ledger.db'}"
            client = inner.webhook_client
            assert client is not None
            argv = [
                sys.executable, "-m", "affidavit.cli", "webhook", "serve",
                "--tls-cert", str(cert), "--tls-key", str(key),
                "--host", IP, "--port", str(PORT),
                "--cluster-name", "shop-eu-1", "--region", "eu-west-1",
                "--ledger", ledger_url, "--policy-dir", str(policies),
                "--kubeconfig", str(inner.kubeconfig),
                "--insecure-registry", REGISTRY, "--budget-seconds", "4",
                "--client-ca", str(client.ca_file), "--client-name", client.name,
                "--decisions-api",
            ]  # fmt: skip
            webhook = ManagedProcess("webhook", ns.command(argv, cwd=wd), wd / "webhook.log")
            try:
                cluster = ProxiedCluster(
                    wd, kubeconfig, bin_dir / "kubectl", ledger_url, webhook, ns,
                    policies / "policy.yaml",
                )  # fmt: skip
                _wire(cluster, ca.cert_pem)
                yield cluster
            finally:
                for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
                    cluster.kubectl("delete", kind, SERVICE, "--ignore-not-found", check=False)
                webhook.stop()


def _wire(cluster: ProxiedCluster, ca_pem: bytes) -> None:
    """The Service, its Endpoints and their Pod, the webhook configurations, the reader role."""
    k = cluster.kubectl
    k("create", "namespace", SYSTEM)
    # The ServiceAccount admission plugin is on (as on a real cluster): wait for "default".
    for _ in range(100):
        if k("get", "serviceaccount", "default", "-n", SYSTEM, check=False).returncode == 0:
            break
        time.sleep(0.2)
    cluster.apply({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "affidavit-webhook-0", "namespace": SYSTEM},
        "spec": {"containers": [{"name": "webhook", "image": "affidavit:dev"}],
                 "automountServiceAccountToken": False},
    })  # fmt: skip
    k("patch", "pod", "affidavit-webhook-0", "-n", SYSTEM, "--subresource=status",
      "--type=merge", "-p", json.dumps({"status": {"podIP": IP, "podIPs": [{"ip": IP}]}}))  # fmt: skip
    cluster.apply({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE, "namespace": SYSTEM},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": PORT}]},
    })  # fmt: skip
    cluster.apply({
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": SERVICE, "namespace": SYSTEM},
        "subsets": [{
            "addresses": [{"ip": IP, "targetRef": {"kind": "Pod", "namespace": SYSTEM,
                                                    "name": "affidavit-webhook-0"}}],
            "ports": [{"name": "https", "port": PORT}],
        }],
    })  # fmt: skip
    cluster.apply(_chart_reader_role())
    for text in render_all().values():
        k("apply", "--server-side", "-f", "-", input=text)
    # The operator's policy index, as it would publish it (no operator runs here).
    index = PolicyIndex.from_objects([yaml.safe_load(cluster.policy_file.read_text())], [], [])
    cluster.apply({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "affidavit-policy-index", "namespace": SYSTEM},
        "data": {"index.json": index.to_json()},
    })  # fmt: skip

    def ready() -> bool:
        got = k("get", "--raw", f"/api/v1/namespaces/{SYSTEM}/services/https:{SERVICE}:https"
                "/proxy/readyz", check=False)  # fmt: skip
        return got.returncode == 0 and got.stdout.startswith("ok")

    cluster.webhook.wait_until(ready, "the webhook answered /readyz through the service proxy")
    bundle = base64.b64encode(ca_pem).decode()
    for configuration in webhook_configurations(
        SERVICE, SYSTEM, f"https://{IP}:{PORT}/validate", f"https://{IP}:{PORT}/mutate"
    ):
        for hook in configuration["webhooks"]:
            hook["clientConfig"]["caBundle"] = bundle
        cluster.apply(configuration)
