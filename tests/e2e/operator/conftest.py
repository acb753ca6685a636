"""Fixtures for the operator's end-to-end tests: CRDs installed, one operator subprocess.

The operator runs exactly as a user runs it (`affidavit operator run ...`) against the session's
real kube-apiserver, with a short certificate lifetime so rotation happens during the tests,
and a SQLite ledger the tests append decisions to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_support import (
    CERT_LIFETIME,
    CRDS,
    NAMESPACE,
    RENEW_FRACTION,
    WEBHOOK_CONFIGURATION,
    RunningOperator,
    get_json,
)

from affidavit.envtest import ControlPlaneInfo, free_port, wait_for

#: The wgpolicyk8s.io/v1alpha2 PolicyReport CRD (structural, from the upstream API types).
POLICY_REPORT_CRD = (
    Path(__file__).resolve().parents[2] / "fixtures" / "crds" / "wgpolicyk8s.io_policyreports.yaml"
)


@pytest.fixture(scope="session")
def crds(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", CRDS)
    # The PolicyReport CRD of the Kubernetes policy working group (wgpolicyk8s.io/v1alpha2):
    # the operator writes reports only where this CRD exists.
    kubectl("apply", "-f", POLICY_REPORT_CRD)
    kubectl("wait", "--for=condition=Established", "crd/policyreports.wgpolicyk8s.io",
            "--timeout=60s")  # fmt: skip
    for crd in CRDS.glob("*.yaml"):
        name = crd.name.removesuffix(".yaml")
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


@pytest.fixture(scope="session")
def operator(
    control_plane: ControlPlaneInfo,
    kubectl: Callable[..., subprocess.CompletedProcess[str]],
    crds: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningOperator]:
    """`affidavit operator run` against the control plane, stopped with SIGTERM at the end."""
    work = tmp_path_factory.mktemp("operator")
    kubectl("create", "namespace", NAMESPACE, check=False)
    port = free_port()
    readiness_url = f"http://127.0.0.1:{free_port()}/readyz"
    webhook_url = f"https://127.0.0.1:{port}/validate"
    # A configuration that never matches anything (failurePolicy Ignore, a namespace label
    # nobody sets): it exists only to receive the caBundle, and cannot disturb other tests.
    kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": WEBHOOK_CONFIGURATION},
                "webhooks": [
                    {
                        "name": "workloads.affidavit.dev",
                        "admissionReviewVersions": ["v1"],
                        "sideEffects": "None",
                        "failurePolicy": "Ignore",
                        "clientConfig": {"url": webhook_url},
                        "namespaceSelector": {"matchLabels": {"affidavit-e2e": "never"}},
                        "rules": [
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE"],
                                "resources": ["pods"],
                            }
                        ],
                    }
                ],
            }
        ),
    )
    ledger_url = f"sqlite:///{work / 'ledger.db'}"
    cert_dir = work / "certs"
    log = work / "operator.log"
    argv = [
        sys.executable, "-m", "affidavit.cli", "operator", "run",
        "--namespace", NAMESPACE,
        "--kubeconfig", str(control_plane.kubeconfig),
        "--cluster-name", "e2e-cluster",
        "--region", "eu-west-1",
        "--ledger", ledger_url,
        "--webhook-url", webhook_url,
        "--webhook-configuration", WEBHOOK_CONFIGURATION,
        "--cert-dir", str(cert_dir),
        "--cert-lifetime", str(CERT_LIFETIME),
        "--cert-renew-fraction", str(RENEW_FRACTION),
        "--resync-seconds", "30",
        "--readiness", readiness_url,
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    running = RunningOperator(
        NAMESPACE, cert_dir, ledger_url, webhook_url, log, proc, readiness_url
    )
    try:
        wait_for(
            lambda: (
                proc.poll() is not None
                or get_json(kubectl, "configmap", "affidavit-policy-index", "-n", NAMESPACE)
            ),
            "the operator to publish the policy index",
            timeout=60,
        )
        if proc.poll() is not None:
            raise AssertionError(f"the operator exited {proc.returncode}:\n{running.log_tail()}")
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        kubectl("delete", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION, check=False)


@pytest.fixture(autouse=True)
def _show_operator_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and "operator" in request.fixturenames:
        op = request.getfixturevalue("operator")
        print(f"--- operator log ---\n{op.log_tail()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
