"""The operator is ready only when the policy index is published and current, and says why not.

In a Pod without cluster DNS the operator could not reach the API, compiled no policy, and the
Pod still reported Ready (kopf's liveness answers while the process runs). `--readiness` serves
/readyz: 200 naming the published index digest; 503 with the reconciler's own diagnostic while
no index could be compiled.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
from operator_support import Kubectl, RunningOperator, get_json
from prometheus_client.parser import text_string_to_metric_families

from affidavit.envtest import free_port, wait_for


def _ready_gauge(readiness_url: str) -> float:
    """``affidavit_operator_ready`` from ``/metrics`` beside ``/readyz``."""
    text = httpx.get(readiness_url.rsplit("/", 1)[0] + "/metrics", timeout=30).text
    (value,) = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "affidavit_operator_ready"
    ]
    return float(value)


def test_readyz_names_the_published_index(operator: RunningOperator, kubectl: Kubectl) -> None:
    configmap = get_json(kubectl, "configmap", "affidavit-policy-index", "-n", operator.namespace)
    digest = configmap["metadata"]["annotations"]["affidavit.dev/index-digest"]
    response = wait_for(
        lambda: (r := httpx.get(operator.readiness_url, timeout=30)).status_code == 200 and r,
        "the operator's /readyz to answer 200",
    )
    assert response.text == f"ok: policy index {digest} published\n"


def test_unreachable_api_is_not_ready_and_says_why(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: the API is unreachable
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{closed}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    url = f"http://127.0.0.1:{free_port()}/readyz"
    log = tmp_path / "operator.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "affidavit.cli", "operator", "run",
                "--namespace", "affidavit-unreachable", "--kubeconfig", str(kubeconfig),
                "--no-manage-certificates", "--readiness", url,
            ],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def answer() -> httpx.Response | None:
            try:
                r = httpx.get(url, timeout=5)
            except httpx.TransportError:
                return None
            return r if "never compiled" in r.text else None

        response = wait_for(answer, "/readyz to report the failed reconcile", timeout=60)
        assert response.status_code == 503
        first, hint = response.text.splitlines()
        assert first.startswith(
            "not ready: policy index not current (never compiled): Kubernetes API unreachable: "
            "list accountabilitypolicies.affidavit.dev: "
        )
        assert f"port={closed}" in first
        assert hint == "  hint: check that the kube-apiserver is up and the kubeconfig points at it"
        assert "WARNING affidavit.operator.readiness: not ready: policy index not current" in (
            log.read_text()
        )
        assert proc.poll() is None  # not ready, still running: it recovers when the API does
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_crds_older_than_the_operator_make_it_not_ready_and_say_which_fields(
    operator: RunningOperator, kubectl: Kubectl
) -> None:
    """``helm upgrade`` leaves a chart's ``crds/`` as first installed. Against an older schema
    the API server drops a policy's newer fields, and what they say is silently not in force;
    the operator reads the served schema (OpenAPI v3, no CRD RBAC) and is not ready until the
    CRDs are applied, so a rollout stops there while the old Pods serve."""
    crd = "accountabilitypolicies.affidavit.dev"
    field = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/require/properties"
    poke = {"apiVersion": "affidavit.dev/v1alpha1", "kind": "AccountabilityPolicy",
            "metadata": {"name": "e2e-crd-poke"},
            "spec": {"match": {"images": ["registry.example/e2e-crd-poke/*"]}}}  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(poke))
    pokes = iter(range(10**6))

    def readyz(status: int) -> httpx.Response | None:
        """/readyz once it answers ``status``; each look is a change (a reconcile, where the
        operator checks the CRDs again once CRDS_CHECK_EVERY has passed)."""
        kubectl("annotate", "accountabilitypolicy", "e2e-crd-poke", f"poke={next(pokes)}",
                "--overwrite")  # fmt: skip
        r = httpx.get(operator.readiness_url, timeout=30)
        return r if r.status_code == status else None

    require = get_json(kubectl, "crd", crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]["properties"]["require"]["properties"]
    kept = require["certifiedSource"]
    try:
        wait_for(lambda: readyz(200), "the operator's /readyz to answer 200", interval=1)
        kubectl("patch", "crd", crd, "--type=json",
                "-p", json.dumps([{"op": "remove", "path": f"{field}/certifiedSource"}]))  # fmt: skip
        try:
            response = wait_for(
                lambda: readyz(503), "the operator to notice the older CRD", interval=1
            )
            assert response.text == (
                "not ready: the API server serves older Affidavit CRDs than this operator's: "
                "AccountabilityPolicy has no spec.require.certifiedSource; it drops those fields "
                "from every object it stores, so what they say is not in force: kubectl apply "
                "--server-side -f charts/affidavit/crds/ (helm upgrade leaves a chart's crds/ as "
                "first installed)\n"
            )
            # the gauge the chart's alert reads (the Pod's readiness is the webhook's alone)
            assert _ready_gauge(operator.readiness_url) == 0.0
            # the startup probe's answer: held too (this operator runs as under RollingUpdate)
            startz = httpx.get(operator.readiness_url.replace("/readyz", "/startz"), timeout=30)
            assert (startz.status_code, startz.text) == (503, response.text)
        finally:
            kubectl("patch", "crd", crd, "--type=json",
                    "-p", json.dumps([{"op": "add", "path": f"{field}/certifiedSource",
                                       "value": kept}]))  # fmt: skip
        wait_for(
            lambda: readyz(200), "the operator to be ready once the CRD is current", interval=1
        )
        assert _ready_gauge(operator.readiness_url) == 1.0
    finally:
        kubectl("delete", "accountabilitypolicy", "e2e-crd-poke", "--ignore-not-found")
