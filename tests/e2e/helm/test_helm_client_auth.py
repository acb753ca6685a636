"""The chart's ``webhook.clientAuth``: only the kube-apiserver's client certificate may call the
webhook. Rendered with ``helm template``: the CA (from ``caBundle`` as a ConfigMap, or an existing
Secret) is mounted read-only into the webhook container only and named by ``AFFIDAVIT_CLIENT_CA``
with the expected names in ``AFFIDAVIT_CLIENT_NAMES``; the probes keep working without a
certificate (same port, open paths); a half configuration fails the render with the reason.
The webhook's behaviour is tested in tests/integration/admission/test_admission_client_auth.py
and, from the real apiserver, in tests/e2e/admission/test_e2e_admission_client_auth.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helm_support import CHART, KUBE_VERSION_ARGS, Render, run_helm

from affidavit.envtest import make_ca

CA_PEM = make_ca("apiserver-webhook-client-ca").cert_pem.decode()


def _kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (dep,) = _kind(docs, "Deployment")
    return {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}


def test_off_by_default(render: Render) -> None:
    docs = render()
    assert not [d for d in _kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("client-ca")]
    for c in _containers(docs).values():
        assert "AFFIDAVIT_CLIENT_CA" not in {e["name"] for e in c["env"]}
        assert "client-ca" not in {m["name"] for m in c["volumeMounts"]}


def test_ca_bundle_becomes_a_configmap_mounted_into_the_webhook(
    render: Render, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "webhook:\n  clientAuth:\n    enabled: true\n"
        "    allowedNames: [kube-apiserver-webhook-client, apiserver-2]\n"
        "    caBundle: |\n" + "".join(f"      {line}\n" for line in CA_PEM.splitlines()),
        encoding="utf-8",
    )
    docs = render("-f", values)
    (cm,) = [d for d in _kind(docs, "ConfigMap") if d["metadata"]["name"] == "affidavit-client-ca"]
    assert cm["metadata"]["namespace"] == "affidavit-system"
    assert cm["data"]["ca.crt"].strip() == CA_PEM.strip()
    containers = _containers(docs)
    webhook = containers["webhook"]
    env = {e["name"]: e.get("value") for e in webhook["env"]}
    assert env["AFFIDAVIT_CLIENT_CA"] == "/var/run/affidavit/client-ca/ca.crt"
    assert env["AFFIDAVIT_CLIENT_NAMES"] == "kube-apiserver-webhook-client apiserver-2"
    assert {"name": "client-ca", "mountPath": "/var/run/affidavit/client-ca", "readOnly": True} in (
        webhook["volumeMounts"]
    )
    assert "AFFIDAVIT_CLIENT_CA" not in {e["name"] for e in containers["operator"]["env"]}
    (dep,) = _kind(docs, "Deployment")
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["client-ca"]["configMap"] == {
        "name": "affidavit-client-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    # the kubelet's probes have no client certificate: they use the open paths
    assert webhook["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert webhook["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_existing_secret(render: Render) -> None:
    docs = render("-f", CHART / "ci" / "client-auth-values.yaml")
    (dep,) = _kind(docs, "Deployment")
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["client-ca"]["secret"] == {
        "secretName": "apiserver-webhook-client-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    assert not [d for d in _kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("client-ca")]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["webhook.clientAuth.allowedNames={kube-apiserver-webhook-client}"],
         "webhook.clientAuth.enabled needs caBundle (PEM) or existingSecret: the CA that signs "
         "the kube-apiserver's webhook client certificate"),
        (["webhook.clientAuth.existingSecret=ca"],
         "webhook.clientAuth.enabled needs allowedNames: the subject CN (or a DNS SAN) of the "
         "kube-apiserver's webhook client certificate"),
    ],
)  # fmt: skip
def test_half_a_configuration_fails_the_render(helm: Path, sets: list[str], message: str) -> None:
    args = ["--set", "webhook.clientAuth.enabled=true"]
    for s in sets:
        args += ["--set", s]
    out = run_helm(
        helm,
        "template",
        "affidavit",
        CHART,
        "-n",
        "affidavit-system",
        *KUBE_VERSION_ARGS,
        *args,
        check=False,
    )
    assert out.returncode != 0
    assert message in out.stderr
