"""The chart's re-check of running workloads (``operator.recheck``), rendered: off by default,
and when on, the operator gets the webhook's judging settings and exactly the RBAC it uses
(list Pods; list, create, update, delete its PolicyReports; nothing else new)."""

from __future__ import annotations

from typing import Any

from helm_support import Render

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    return dep


def _container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    containers = _deployment(docs)["spec"]["template"]["spec"]["containers"]
    (found,) = [c for c in containers if c["name"] == name]
    return found


def _rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (role,) = [
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "affidavit"
    ]
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def _env(container: dict[str, Any]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_recheck_is_off_by_default(render: Render) -> None:
    docs = render()
    operator = _container(docs, "operator")
    assert not [k for k in _env(operator) if "RECHECK" in k]
    rules = _rules(docs)
    assert not [r for r in rules if "pods" in r["resources"] or "policyreports" in r["resources"]]


def test_the_recheck_gets_the_webhooks_settings_and_only_the_rbac_it_uses(render: Render) -> None:
    off = _rules(render())
    docs = render(
        "--set", "operator.recheck.enabled=true",
        "--set", "operator.recheck.periodSeconds=120",
        "--set", "operator.recheck.expiryWarningSeconds=86400",
        "--set", "registry.insecureHosts={registry.local:5000}",
        "--set", "registry.allowedHosts={blobs.example.com}",
        "--set", f"registry.caBundle={CA}",
        "--set", "webhook.excludeNamespaces={monitoring}",
        "--set", "unmatchedImages=Deny",
    )  # fmt: skip
    operator, webhook = _container(docs, "operator"), _container(docs, "webhook")
    env, webhook_env = _env(operator), _env(webhook)
    assert (env["AFFIDAVIT_RECHECK_SECONDS"], env["AFFIDAVIT_EXPIRY_WARNING_SECONDS"]) == (
        "120",
        "86400",
    )
    # Judged as the webhook judges: the same budget, unmatched images, registries and CA.
    for name in (
        "AFFIDAVIT_BUDGET_SECONDS",
        "AFFIDAVIT_UNMATCHED_IMAGES",
        "AFFIDAVIT_REGISTRY_ALLOWED_HOSTS",
        "AFFIDAVIT_REGISTRY_CA",
    ):
        assert env[name] == webhook_env[name], name
    assert "--insecure-registry=registry.local:5000" in operator["args"]
    assert "--exclude-namespace=monitoring" in operator["args"]
    mounts = {m["name"]: m["mountPath"] for m in operator["volumeMounts"]}
    assert mounts["registry-ca"] == "/etc/affidavit/registry-ca"
    # Exactly two rules more, and the only delete in the chart is on its own PolicyReports.
    added = [r for r in _rules(docs) if r not in off]
    assert added == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {
            "apiGroups": ["wgpolicyk8s.io"],
            "resources": ["policyreports"],
            "verbs": ["list", "create", "update", "delete"],
        },
    ]


def test_prometheus_scrapes_the_operators_metrics_with_or_without_the_recheck(
    render: Render,
) -> None:
    """The operator's /metrics (its readiness gauge; with the re-check, the re-check's too) is
    scraped and let through whether or not the re-check is on."""

    def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
        (found,) = [d for d in docs if d["kind"] == kind]
        return found

    metrics = ("--set", "metrics.port=9090", "--set", "metrics.serviceMonitor.enabled=true")
    for docs in (render(*metrics), render(*metrics, "--set", "operator.recheck.enabled=true")):
        endpoints = of_kind(docs, "ServiceMonitor")["spec"]["endpoints"]
        assert [(e.get("port"), e.get("targetPort"), e["path"]) for e in endpoints] == [
            ("metrics", None, "/metrics"),
            (None, "ready", "/metrics"),
        ]
        ports = [c["name"] for c in _container(docs, "operator")["ports"]]
        assert "ready" in ports  # the named port the endpoint scrapes
        ingress = of_kind(docs, "NetworkPolicy")["spec"]["ingress"]
        scraped = [p["port"] for rule in ingress for p in rule["ports"]]
        assert scraped == ["https", "metrics", "ready"]
