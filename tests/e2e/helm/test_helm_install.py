"""The chart installed into a real kube-apiserver: every object is accepted, the ServiceAccount
can do exactly what the operator and webhook need (kubectl auth can-i), the pods pass the
apiserver's own PodSecurity "restricted" admission, and the operator runs with the chart's RBAC.

Pods stay Pending (no scheduler or kubelet); the webhook is installed with failurePolicy Ignore
so the release cannot block other tests sharing the control plane while it exists.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_podsecurity import pod_specs
from helm_support import CHART, KUBE_VERSION_ARGS, run_helm

from affidavit.envtest import ControlPlaneInfo

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
NS = "affidavit-helm-e2e"
RELEASE = "affidavit-e2e"  # fullname affidavit-e2e; the ServiceAccount is named affidavit
SA = f"system:serviceaccount:{NS}:affidavit"
SET = [
    "--set", "serviceAccount.name=affidavit",
    "--set", "clusterName=helm-e2e",
    "--set", "region=us-east-1",
    "--set", "webhook.failurePolicy=Ignore",
]  # fmt: skip


@pytest.fixture(scope="module")
def release(
    helm: Path,
    control_plane: ControlPlaneInfo,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **control_plane.env(),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    kubectl("create", "namespace", NS, check=False)
    kubectl("label", "--overwrite", "namespace", NS,
            "pod-security.kubernetes.io/enforce=restricted")  # fmt: skip
    out = run_helm(helm, "install", RELEASE, CHART, "--namespace", NS, *SET, env=env, timeout=180)
    try:
        yield out.stdout + out.stderr
    finally:
        run_helm(helm, "uninstall", RELEASE, "--namespace", NS, check=False, env=env)


def can_i(kubectl: Kubectl, *args: str) -> bool:
    proc = kubectl("auth", "can-i", *args, f"--as={SA}", check=False)
    assert proc.stdout.strip() in {"yes", "no"}, proc.stderr
    return proc.stdout.strip() == "yes"


def test_install_creates_every_object(release: str, kubectl: Kubectl) -> None:
    assert "would violate PodSecurity" not in release
    for kind in ("deployment", "service", "serviceaccount", "role", "rolebinding",
                 "poddisruptionbudget"):  # fmt: skip
        assert kubectl("get", kind, "-n", NS, "-o", "name").stdout.strip(), kind
    kubectl("get", "clusterrole", RELEASE)
    kubectl("get", "clusterrolebinding", RELEASE)
    vwc = json.loads(kubectl("get", "validatingwebhookconfiguration", RELEASE, "-o", "json").stdout)
    assert vwc["webhooks"][0]["clientConfig"]["service"]["name"] == RELEASE
    mwc = json.loads(kubectl("get", "mutatingwebhookconfiguration", RELEASE, "-o", "json").stdout)
    assert mwc["webhooks"][0]["clientConfig"]["service"]["path"] == "/mutate"
    for crd in ("accountabilitypolicies", "regionpolicies", "accountabilityexceptions"):
        kubectl("get", "crd", f"{crd}.affidavit.dev")


MUST = [
    ("list", "accountabilitypolicies.affidavit.dev"),
    ("watch", "regionpolicies.affidavit.dev"),
    ("watch", "accountabilityexceptions.affidavit.dev", "--all-namespaces"),
    ("patch", "accountabilitypolicies.affidavit.dev", "--subresource=status"),
    ("patch", "accountabilityexceptions.affidavit.dev", "--subresource=status", "-n", "team-a"),
    ("create", "events", "-n", "team-a"),
    ("list", "namespaces"),
    ("get", f"validatingwebhookconfigurations/{RELEASE}"),
    ("patch", f"validatingwebhookconfigurations/{RELEASE}"),
    ("get", f"mutatingwebhookconfigurations/{RELEASE}"),
    ("patch", f"mutatingwebhookconfigurations/{RELEASE}"),
    ("create", "configmaps", "-n", NS),
    ("update", "configmaps/affidavit-policy-index", "-n", NS),
    ("watch", "configmaps", "-n", NS),
    ("get", "secrets/affidavit-webhook-tls", "-n", NS),
    ("update", "secrets/affidavit-webhook-tls", "-n", NS),
    ("get", "secrets/regcred", "-n", "team-a"),  # imagePullSecrets of a workload
    # the controller owner of a ReplicaSet, Pod or Job, read to admit it on the owner's decision
    ("get", "deployments.apps/web", "-n", "team-a"),
    ("get", "replicasets.apps/web-5d8f", "-n", "team-a"),
    ("get", "statefulsets.apps/db", "-n", "team-a"),
    ("get", "daemonsets.apps/agent", "-n", "team-a"),
    ("get", "jobs.batch/rotate-1", "-n", "team-a"),
    ("get", "cronjobs.batch/rotate", "-n", "team-a"),
    ("get", "replicationcontrollers/legacy", "-n", "team-a"),
    ("get", "controllerrevisions.apps/db-7c9f", "-n", "team-a"),  # a StatefulSet's revision
]
MUST_NOT = [
    ("patch", "accountabilitypolicies.affidavit.dev"),  # only status
    ("create", "accountabilitypolicies.affidavit.dev"),
    ("delete", "accountabilityexceptions.affidavit.dev", "-n", "team-a"),
    ("update", "configmaps/affidavit-policy-index", "-n", "team-a"),
    ("create", "configmaps", "-n", "team-a"),
    ("update", "configmaps/other", "-n", NS),
    ("list", "secrets", "-n", NS),
    ("watch", "secrets", "-n", "team-a"),
    ("update", "secrets/other", "-n", NS),
    ("delete", "secrets/affidavit-webhook-tls", "-n", NS),
    ("patch", "validatingwebhookconfigurations/someone-else"),
    ("delete", f"validatingwebhookconfigurations/{RELEASE}"),
    ("create", "validatingwebhookconfigurations"),
    ("patch", "mutatingwebhookconfigurations/someone-else"),
    ("create", "mutatingwebhookconfigurations"),
    ("create", "pods", "-n", "team-a"),
    ("create", "deployments.apps", "-n", NS),
    ("list", "replicasets.apps", "-n", "team-a"),  # owners are read one by one, by name
    ("list", "controllerrevisions.apps", "-n", "team-a"),
    ("watch", "deployments.apps", "-n", "team-a"),
    ("update", "replicasets.apps/web-5d8f", "-n", "team-a"),
    ("get", "pods/web-5d8f-x2x9q", "-n", "team-a"),  # Pods own nothing the webhook judges
    ("update", "namespaces/team-a"),
    ("list", "events", "-n", "team-a"),
    ("create", "clusterrolebindings"),
    ("escalate", "clusterroles"),
]


def test_service_account_can_do_what_it_needs(release: str, kubectl: Kubectl) -> None:
    denied = [args for args in MUST if not can_i(kubectl, *args)]
    assert denied == []


def test_service_account_cannot_do_anything_else(release: str, kubectl: Kubectl) -> None:
    allowed = [args for args in MUST_NOT if can_i(kubectl, *args)]
    assert allowed == []


def _pod(name: str, spec: Mapping[str, Any]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": NS}, "spec": spec})  # fmt: skip


def test_pods_pass_the_apiservers_restricted_admission(
    release: str, helm: Path, kubectl: Kubectl
) -> None:
    args: tuple[str | Path, ...] = ("template", RELEASE, CHART, "--namespace", NS)
    args += (*KUBE_VERSION_ARGS, *SET)
    rendered = run_helm(helm, *args).stdout
    tests = run_helm(helm, *args,
                     "--show-only", "templates/tests/test-readyz.yaml").stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered + "\n---\n" + tests) if d]
    specs = dict(pod_specs(docs))
    assert set(specs) == {f"Deployment/{RELEASE}", f"Pod/{RELEASE}-test-readyz"}
    for i, spec in enumerate(specs.values()):
        proc = kubectl("create", "--dry-run=server", "-f", "-",
                       input=_pod(f"psa-check-{i}", spec), check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "PodSecurity" not in proc.stderr

    # the same admission refuses a pod that breaks the profile: the check above can fail
    bad = json.loads(_pod("psa-bad", specs[f"Deployment/{RELEASE}"]))
    bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    proc = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False)
    assert proc.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in proc.stderr
    assert "allowPrivilegeEscalation != false" in proc.stderr


def test_operator_runs_with_the_charts_rbac(
    release: str, control_plane: ControlPlaneInfo, kubectl: Kubectl, tmp_path: Path
) -> None:
    token = kubectl("create", "token", "affidavit", "-n", NS, "--duration=10m").stdout.strip()
    kubeconfig = tmp_path / "sa.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "c", "cluster": {
            "server": control_plane.server,
            "certificate-authority-data": base64.b64encode(control_plane.ca_pem).decode()}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
    }))  # fmt: skip
    first = run_operator_until_converged(kubeconfig, tmp_path / "first", kubectl)
    secret = kubectl("get", "secret", "affidavit-webhook-tls", "-n", NS, "-o",
                     "jsonpath={.data.tls\\.crt}").stdout  # fmt: skip
    assert base64.b64decode(secret) == (tmp_path / "first" / "certs" / "tls.crt").read_bytes()

    # a restarted operator keeps serving the stored, still valid certificate
    run_operator_until_converged(kubeconfig, tmp_path / "second", kubectl)
    assert (tmp_path / "second" / "certs" / "tls.crt").read_bytes() == first
    assert (
        "issuing a new webhook serving certificate"
        not in (tmp_path / "second" / "operator.log").read_text()
    )


def run_operator_until_converged(kubeconfig: Path, work: Path, kubectl: Kubectl) -> bytes:
    """Run the operator with ``kubeconfig`` until the index, Secret, caBundle and cert dir exist;
    returns the served certificate."""
    work.mkdir()
    log = work / "operator.log"
    certs = work / "certs"
    argv = [sys.executable, "-m", "affidavit.cli", "operator", "run",
            "--namespace", NS, "--kubeconfig", str(kubeconfig), "--service", RELEASE,
            "--webhook-configuration", RELEASE, "--cluster-name", "helm-e2e",
            "--cert-dir", str(certs)]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        done = False
        while time.monotonic() < deadline and proc.poll() is None and not done:
            cm = kubectl("get", "configmap", "affidavit-policy-index", "-n", NS, check=False)
            secret = kubectl("get", "secret", "affidavit-webhook-tls", "-n", NS, check=False)
            bundle = all(
                kubectl("get", kind, RELEASE, "-o",
                        "jsonpath={.webhooks[0].clientConfig.caBundle}").stdout
                for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration")
            )  # fmt: skip
            done = (cm.returncode == 0 and secret.returncode == 0 and bool(bundle)
                    and (certs / "tls.key").exists())  # fmt: skip
            time.sleep(0.5)
        text = log.read_text(errors="replace")
        assert done, f"operator with the chart's RBAC did not converge:\n{text[-3000:]}"
        assert "403" not in text and "Forbidden" not in text, text[-3000:]
        return (certs / "tls.crt").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
